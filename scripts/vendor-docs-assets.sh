#!/usr/bin/env bash
# Refreshes the Swagger UI and Redoc files that herald embeds in its binary.
#
# They come from the npm registry at pinned versions and are committed, so that building herald
# and serving /docs never reach the network. Bump a version here, run this, and commit the result.
set -euo pipefail

SWAGGER_UI_VERSION=5.35.0
# Redoc 2.x: the 3.x bundle sends telemetry to its vendor by default, which /docs must never do.
REDOC_VERSION=2.5.4

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/crates/herald-core/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "swagger-ui-dist@$SWAGGER_UI_VERSION" "redoc@$REDOC_VERSION" >/dev/null
mkdir swagger redoc
tar xzf "swagger-ui-dist-$SWAGGER_UI_VERSION.tgz" -C swagger
tar xzf "redoc-$REDOC_VERSION.tgz" -C redoc

rm -rf "$dest/swagger-ui" "$dest/redoc"
mkdir -p "$dest/swagger-ui" "$dest/redoc"
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
  cp "swagger/package/$f" "$dest/swagger-ui/$f"
done
# The bundle ends with a sourceMappingURL comment; the map is not shipped, so drop the pointer.
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/swagger-ui/swagger-ui-bundle.js"
cp redoc/package/bundles/redoc.standalone.js "$dest/redoc/"
cp redoc/package/LICENSE "$dest/redoc/"
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/redoc/redoc.standalone.js"
# Redoc's sidebar footer loads its logo from a CDN whatever the options; point it at an empty
# data URL instead (the <img> then hides itself through its own onError).
sed -i 's#"https://cdn.redoc.ly/redoc/logo-mini.svg"#"data:,"#' "$dest/redoc/redoc.standalone.js"
if grep -q 'cdn\.redoc\.ly' "$dest/redoc/redoc.standalone.js"; then
  echo "redoc $REDOC_VERSION still references cdn.redoc.ly; update the rewrite above" >&2
  exit 1
fi
printf 'swagger-ui-dist %s\nredoc %s\n' "$SWAGGER_UI_VERSION" "$REDOC_VERSION" >"$dest/VERSIONS"
echo "vendored swagger-ui-dist $SWAGGER_UI_VERSION and redoc $REDOC_VERSION into $dest"
