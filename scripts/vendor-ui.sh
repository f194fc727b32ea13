#!/usr/bin/env bash
# Re-vendor the web UI's third-party front-end files from the npm registry (the output is committed; nothing
# is fetched at run time). Versions are pinned here; src/proj/server/ui/static/vendor/VENDORED.md records them,
# with each file's sha256 and licence. Run from the repository root: bash scripts/vendor-ui.sh
set -euo pipefail
UPLOT=1.6.32
DEST=src/proj/server/ui/static/vendor
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$UPLOT" >/dev/null && tar xzf "uplot-$UPLOT.tgz")
mkdir -p "$DEST/uplot"
cp "$work/package/dist/uPlot.esm.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$DEST/uplot/"
{
  echo "# Vendored front-end files (written by scripts/vendor-ui.sh; do not edit by hand)"
  echo
  echo "| package | version | licence | source | file | sha256 |"
  echo "|---|---|---|---|---|---|"
  for f in uPlot.esm.js uPlot.min.css LICENSE; do
    echo "| uplot | $UPLOT | MIT | https://registry.npmjs.org/uplot/-/uplot-$UPLOT.tgz | uplot/$f | $(sha256sum "$DEST/uplot/$f" | cut -d' ' -f1) |"
  done
} > "$DEST/VENDORED.md"
echo "vendored uplot $UPLOT into $DEST"
