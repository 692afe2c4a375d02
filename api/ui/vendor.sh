#!/usr/bin/env bash
# Refreshes the live view's vendored libraries from npm: Cytoscape.js and
# cytoscape-dagre, as the minified ES modules their packages ship, with
# their licenses, a VERSIONS file and a SHA256SUMS manifest that
# TestVendoredFilesMatchTheirManifest checks.
#
#   api/ui/vendor.sh                 # the versions pinned below
#   CYTOSCAPE=3.36.0 api/ui/vendor.sh
#
# The files are copied byte for byte from the packages; nothing is built.
# cytoscape-dagre's ES module bundles dagre and graphlib, so those two are
# fetched only for their LICENSE files, at the versions the bundle says it
# carries (read back from the bundle, so a refresh cannot mislabel them).
# Only MIT, BSD or Apache licensed packages may be added: the script
# refuses anything else.
set -euo pipefail

CYTOSCAPE=${CYTOSCAPE:-3.35.0}
CYTOSCAPE_DAGRE=${CYTOSCAPE_DAGRE:-4.0.1}

here=$(cd "$(dirname "$0")" && pwd)
out=$here/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# unpack NAME VERSION: npm pack the package into $work/NAME and echo its folder.
unpack() {
	local name=$1 version=$2 dir=$work/${1//[@\/]/_}
	mkdir -p "$dir"
	(cd "$dir" && npm pack --silent "$name@$version" >/dev/null && tar xzf ./*.tgz)
	local license
	license=$(node -p "require('$dir/package/package.json').license")
	case $license in
	MIT | BSD-2-Clause | BSD-3-Clause | Apache-2.0) ;;
	*) echo "vendor.sh: $name@$version is licensed $license; only MIT, BSD or Apache may be vendored" >&2; exit 1 ;;
	esac
	echo "$dir/package"
}

cy=$(unpack cytoscape "$CYTOSCAPE")
cyd=$(unpack cytoscape-dagre "$CYTOSCAPE_DAGRE")

# The bundle names the versions it carries: graphlib's as the first
# version string, dagre's as the second (dagre embeds graphlib).
mapfile -t bundled < <(grep -o '="[0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*"' "$cyd/dist/cytoscape-dagre.mjs" | tr -d '="')
if [ "${#bundled[@]}" -lt 2 ]; then
	echo "vendor.sh: cannot read the dagre and graphlib versions bundled in cytoscape-dagre $CYTOSCAPE_DAGRE; look at dist/cytoscape-dagre.mjs and update this script" >&2
	exit 1
fi
GRAPHLIB=${bundled[0]}
DAGRE=${bundled[1]}
dagre=$(unpack @dagrejs/dagre "$DAGRE")
graphlib=$(unpack @dagrejs/graphlib "$GRAPHLIB")

rm -rf "$out"
mkdir -p "$out"
cp "$cy/dist/cytoscape.esm.min.mjs" "$out/cytoscape.esm.min.mjs"
cp "$cyd/dist/cytoscape-dagre.min.mjs" "$out/cytoscape-dagre.min.mjs"
cp "$cy/LICENSE" "$out/LICENSE.cytoscape"
cp "$cyd/LICENSE" "$out/LICENSE.cytoscape-dagre"
cp "$dagre/LICENSE" "$out/LICENSE.dagre"
cp "$graphlib/LICENSE" "$out/LICENSE.graphlib"

{
	row() { printf '%-18s %-8s %-8s %s\n' "$@"; }
	license() { node -p "require('$1/package.json').license"; }
	row "# npm package" version license files
	row cytoscape "$CYTOSCAPE" "$(license "$cy")" "cytoscape.esm.min.mjs LICENSE.cytoscape"
	row cytoscape-dagre "$CYTOSCAPE_DAGRE" "$(license "$cyd")" "cytoscape-dagre.min.mjs LICENSE.cytoscape-dagre"
	row @dagrejs/dagre "$DAGRE" "$(license "$dagre")" "bundled in cytoscape-dagre.min.mjs; LICENSE.dagre"
	row @dagrejs/graphlib "$GRAPHLIB" "$(license "$graphlib")" "bundled in cytoscape-dagre.min.mjs; LICENSE.graphlib"
} >"$out/VERSIONS"

(cd "$out" && sha256sum $(ls | grep -v '^SHA256SUMS$' | sort) >SHA256SUMS)
echo "vendored into $out:"
cat "$out/VERSIONS"
