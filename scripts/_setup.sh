# Shared by scripts/start and scripts/test: make .venv and install the project into it,
# skipping pip when pyproject.toml has not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python_bin="${PYTHON:-python3}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Tradetape needs Python 3.11 or newer ($python_bin is $("$python_bin" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
stamp=".venv/.installed${extras:+-$extras}"
# A dev install (scripts/test) holds everything the plain one needs.
if [ -z "$extras" ] && [ -f .venv/.installed-dev ] && [ ! pyproject.toml -nt .venv/.installed-dev ]
then
  stamp=.venv/.installed-dev
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
# What pip does for an installed package, and what PYTHONDONTWRITEBYTECODE would otherwise
# leave undone: bytecode for our modules, and the cached code of generated dataclass methods
# (api/code_cache.py). Each command would otherwise compile them again on every start.
if [ ! -f .venv/.compiled ] || [ -n "$(find domain application adapters api projections \
     -name '*.py' -newer .venv/.compiled -print -quit)" ]; then
  .venv/bin/python -m compileall -q domain application adapters api projections >/dev/null
  .venv/bin/python -m api.code_cache 2>/dev/null || true
  touch .venv/.compiled
fi
