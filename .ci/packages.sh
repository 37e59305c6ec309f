#!/usr/bin/env bash
# The Python wheel and the npm packages: built by `cargo xtask package --profile dev` (the
# debug build, stripped; a release build would take many minutes on two cores), then
# installed *from the built files* into a fresh virtualenv and a fresh npm project, where
# the committed suites (packages/python/tests, packages/npm/test) run against them.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip_install() { "$1/bin/pip" install --quiet --disable-pip-version-check "${@:2}"; }

python3 -m venv "$work/build"
pip_install "$work/build" 'maturin>=1.5,<2'
MATURIN="$work/build/bin/maturin" cargo xtask package --profile dev >"$work/artifacts"
wheel="$(grep '\.whl$' "$work/artifacts")"
platform_tgz="$(grep '/linkbox-linux-x64-[^/]*\.tgz$' "$work/artifacts")"
main_tgz="$(grep '/linkbox-[0-9][^/]*\.tgz$' "$work/artifacts")"
echo "packages: built in $((SECONDS - started)) s: $wheel $platform_tgz $main_tgz"

# Python: the wheel and the suite's own test dependencies, nothing from the source tree.
python3 -m venv "$work/py"
pip_install "$work/py" "$wheel" pytest pytest-xdist requests httpx 'mypy>=1.10' vermin
cp -r packages/python/tests "$work/py-tests"
(
  cd "$work/py-tests"
  "$work/py/bin/mypy" --strict --no-incremental -p linkbox
  "$work/py/bin/vermin" --target=3.9- --no-tips --violations -q \
    "$("$work/py/bin/python" -c 'import linkbox, os; print(os.path.dirname(linkbox.__file__))')"
  "$work/py/bin/python" -m pytest -p no:cacheprovider -n 2 -q
)

# Node: a fresh project with both tarballs (and TypeScript, to check the declarations).
mkdir "$work/node"
cp -r packages/npm/test "$work/node/test"
(
  cd "$work/node"
  npm init -y >/dev/null
  npm install --no-audit --no-fund --loglevel=error "$platform_tgz" "$main_tgz" typescript@5
  # Without esnext.disposable in `lib` and without @types/node: the declarations bring in
  # what `[Symbol.asyncDispose]` needs, as TypeScript 6 and later need them to.
  npx --no-install tsc --noEmit --strict --target es2022 --lib es2022 \
    --module nodenext --moduleResolution nodenext test/types.ts
  node --test test/*.test.js
)
echo "packages: built, installed and tested in $((SECONDS - started)) s"
