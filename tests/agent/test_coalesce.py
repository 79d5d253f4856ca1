from hivehub.agent.llm import OutputCoalescer


def test_at_most_one_report_per_interval_and_nothing_lost() -> None:
    c = OutputCoalescer(0.1)
    out = []
    for i in range(100):  # one token per 10 ms for 1 s
        now = i * 0.01
        if c.add(f"t{i} ", now):
            out.append((now, c.take(now)))
    out.append((1.0, c.take(1.0)))
    assert "".join(t for _, t in out) == "".join(f"t{i} " for i in range(100))
    times = [t for t, _ in out]
    assert all(b - a >= 0.1 - 1e-9 for a, b in zip(times, times[1:-1], strict=False))
    assert len(out) <= 12
    assert c.due_in(1.0) is None


def test_the_first_text_waits_an_interval_too() -> None:
    c = OutputCoalescer(0.5)  # (times exact in binary floating point)
    assert not c.add("Once", 1.0)  # no report for the first token alone
    assert c.due_in(1.0) == 0.5
    assert not c.add(" upon", 1.25)
    assert c.add(" a", 1.5) and c.take(1.5) == "Once upon a"
    assert not c.add(" time", 1.75) and c.due_in(1.75) == 0.25
