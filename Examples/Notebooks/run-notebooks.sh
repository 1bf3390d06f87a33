#!/usr/bin/env bash
# Runs every notebook in this folder headless with dotnet-repl (pinned in .config/dotnet-tools.json) and fails when
# a cell fails. By default the executed copies go to a temporary folder; with --update they replace the notebooks,
# which is how the committed outputs are produced.
#   Examples/Notebooks/run-notebooks.sh [--update] [Notebook.ipynb ...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
update=false
if [ "${1:-}" = "--update" ]; then update=true; shift; fi
notebooks=("$@")
if [ ${#notebooks[@]} -eq 0 ]; then
  for nb in "$here"/*.ipynb; do notebooks+=("$(basename "$nb")"); done
fi

cd "$root"
dotnet tool restore
dotnet build -c Release Examples/Notebooks/References

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0
cd "$here"
for nb in "${notebooks[@]}"; do
  start=$(date +%s)
  echo "== notebook $nb"
  set +e
  dotnet dotnet-repl --run "$nb" --exit-after-run --output-path "$out/$nb" > "$out/$nb.log" 2>&1
  rc=$?
  set -e
  errors=$(grep -c '"output_type": "error"' "$out/$nb" 2>/dev/null || true)
  if [ "$rc" -ne 0 ] || [ ! -s "$out/$nb" ] || [ "${errors:-0}" -ne 0 ]; then
    echo "notebook $nb failed (exit $rc, $errors error output(s))"
    grep -v '^   at ' "$out/$nb.log" | tail -20 || true
    [ -s "$out/$nb" ] && grep -A3 '"ename"' "$out/$nb" | head -20 || true
    failed=$((failed + 1))
    continue
  fi
  echo "notebook $nb: every cell ran ($(( $(date +%s) - start )) s)"
  if $update; then cp "$out/$nb" "$here/$nb"; fi
done
if [ "$failed" -ne 0 ]; then echo "$failed notebook(s) failed"; exit 1; fi
