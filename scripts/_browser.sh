# Used by scripts/test: the browser tests (tests/e2e/test_graphiql_browser.py) drive Debian's
# chromium through Playwright (the dev extras). Install chromium when it is missing and we can
# (root with apt-get); otherwise say so: the browser tests then skip, or fail under CI=true.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${TRADETAPE_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser tests..." >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
      >/dev/null || echo "could not install chromium: the browser tests will not run" >&2
  else
    echo "no chromium (apt-get install chromium, or set TRADETAPE_CHROMIUM):" \
         "the browser tests will not run" >&2
  fi
fi
