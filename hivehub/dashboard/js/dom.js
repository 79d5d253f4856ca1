// Small DOM and formatting helpers shared by the dashboard's views, plus the two
// interaction pieces every view uses: a copyable id chip and a confirmation dialog.
// Nothing from the hub is ever inserted as HTML (textContent only).

export const $ = (sel, root = document) => root.querySelector(sel);
export const tid = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'testid') node.dataset.testid = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'style') node.style.cssText = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function setText(node, text) {
  const t = text == null ? '' : String(text);
  if (node && node.textContent !== t) node.textContent = t;
}

export const short = (id) => (id ? String(id).slice(0, 8) : '–');
export const pct = (v, digits = 0) => (v == null ? '–' : `${(v * 100).toFixed(digits)}%`);
export const fmtInt = (n) => (n == null ? '–' : Number(n).toLocaleString('en-US'));
export const fmtUsd = (v) => (v == null ? 'no price' : `$${Number(v).toFixed(v >= 1 ? 2 : 6)}`);

export function fmtMs(ms) {
  if (ms == null || Number.isNaN(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

export function fmtTime(ts, withMs = false) {
  if (!ts) return '–';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  const s = d.toLocaleTimeString([], { hour12: false });
  return withMs ? `${s}.${String(d.getMilliseconds()).padStart(3, '0')}` : s;
}

export function fmtDateTime(ts) {
  if (!ts) return '–';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : `${d.toLocaleDateString()} ${fmtTime(ts, true)}`;
}

export function json(value) {
  if (value === undefined || value === null) return '–';
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

// ------------------------------------------------------------------ copyable ids

let toastFn = () => {};
/** The views report through the page's toasts: app.js passes its toast(). */
export function setToast(fn) {
  toastFn = fn;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // (no clipboard API outside a secure context): the old way
    const ta = h('textarea', { style: 'position:fixed;left:-9999px', 'aria-hidden': 'true' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

/**
 * A short id that copies the whole id: shows 8 characters, the title and
 * data-copy hold the full one. A click does not reach the row under it.
 */
export function idChip(id, testid = 'id-chip') {
  const b = h('button', { type: 'button', class: 'id-chip', testid, dataset: { copy: id }, title: `${id} (click to copy)`, 'aria-label': `Copy id ${id}` }, short(id));
  b.addEventListener('click', async (e) => {
    e.stopPropagation();
    const ok = await copyText(b.dataset.copy);
    b.dataset.copied = ok ? 'yes' : 'no';
    toastFn(ok ? `Copied ${b.dataset.copy}` : `Could not copy; the id is ${b.dataset.copy}`, ok ? 'ok' : 'warn');
  });
  b.addEventListener('keydown', (e) => e.key === 'Enter' && e.stopPropagation());
  return b;
}

// ------------------------------------------------------------------ confirmation

/**
 * Ask before a change that cannot be taken back. Resolves true on the
 * confirm button, false on Cancel, Esc or a click on the backdrop. Focus starts
 * on Cancel (the safe choice) and returns where it was.
 */
export function confirmAction({ title, body, ok = 'Confirm', danger = true }) {
  const dlg = tid('confirm-dialog');
  const back = document.activeElement;
  setText(tid('confirm-title'), title);
  setText(tid('confirm-body'), body || '');
  const okBtn = tid('confirm-ok');
  setText(okBtn, ok);
  okBtn.classList.toggle('danger', danger);
  okBtn.classList.toggle('primary', !danger);
  return new Promise((resolve) => {
    const done = (value) => {
      okBtn.removeEventListener('click', onOk);
      tid('confirm-cancel').removeEventListener('click', onCancel);
      dlg.removeEventListener('close', onClose);
      dlg.removeEventListener('click', onBackdrop);
      if (dlg.open) dlg.close();
      if (back instanceof HTMLElement && back.isConnected) back.focus();
      resolve(value);
    };
    const onOk = () => done(true);
    const onCancel = () => done(false);
    const onClose = () => done(false); // Esc
    const onBackdrop = (e) => e.target === dlg && done(false);
    okBtn.addEventListener('click', onOk);
    tid('confirm-cancel').addEventListener('click', onCancel);
    dlg.addEventListener('close', onClose);
    dlg.addEventListener('click', onBackdrop);
    dlg.showModal();
    tid('confirm-cancel').focus();
  });
}
