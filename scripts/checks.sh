#!/usr/bin/env bash
# `npm test`'s static checks: ESLint and tsc --noEmit side by side (each keeps one core busy for
# most of a minute), failing when either fails, once both have ended.
set -u
cd "$(dirname "$0")/.."
npm run --silent lint &
lint=$!
npm run --silent typecheck
typecheck=$?
wait "$lint"
lint=$?
[ "$lint" -eq 0 ] || echo "npm test: ESLint failed (npm run lint)" >&2
[ "$typecheck" -eq 0 ] || echo "npm test: the typecheck failed (npm run typecheck)" >&2
[ "$lint" -eq 0 ] && [ "$typecheck" -eq 0 ]
