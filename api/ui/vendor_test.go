package ui

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"
)

// TestVendoredFilesMatchTheirManifest checks the embedded vendor/ folder
// against SHA256SUMS, which vendor.sh writes from the npm packages: a file
// edited by hand, added without the script, or missing fails it.
func TestVendoredFilesMatchTheirManifest(t *testing.T) {
	vendor, err := fs.Sub(Static(), "vendor")
	if err != nil {
		t.Fatal(err)
	}
	sums, err := fs.ReadFile(vendor, "SHA256SUMS")
	if err != nil {
		t.Fatalf("read vendor/SHA256SUMS: %v (run api/ui/vendor.sh)", err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(sums)))
	for sc.Scan() {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not \"HASH  NAME\"", sc.Text())
		}
		listed[name] = true
		data, err := fs.ReadFile(vendor, name)
		if err != nil {
			t.Errorf("%s is in SHA256SUMS but cannot be read: %v", name, err)
			continue
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != want {
			t.Errorf("%s: sha256 %x, SHA256SUMS says %s (run api/ui/vendor.sh, do not edit vendored files)", name, got, want)
		}
	}
	entries, err := fs.ReadDir(vendor, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "SHA256SUMS" && !listed[e.Name()] {
			t.Errorf("vendor/%s is not in SHA256SUMS (run api/ui/vendor.sh)", e.Name())
		}
	}
	for _, must := range []string{"cytoscape.esm.min.mjs", "cytoscape-dagre.min.mjs", "VERSIONS"} {
		if !listed[must] {
			t.Errorf("SHA256SUMS does not list %s", must)
		}
	}
}

// TestVendoredLicensesArePermissive keeps GPL and EPL code out of the
// binary: every vendored package named in VERSIONS has a LICENSE file and
// an MIT, BSD or Apache license.
func TestVendoredLicensesArePermissive(t *testing.T) {
	versions, err := fs.ReadFile(Static(), "vendor/VERSIONS")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(versions), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		switch f[2] {
		case "MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0":
		default:
			t.Errorf("%s %s is licensed %s: only MIT, BSD or Apache may be vendored", f[0], f[1], f[2])
		}
		license := f[len(f)-1]
		text, err := fs.ReadFile(Static(), "vendor/"+license)
		if err != nil {
			t.Errorf("%s: no %s beside it: %v", f[0], license, err)
			continue
		}
		if strings.Contains(string(text), "GNU General Public") || strings.Contains(string(text), "Eclipse Public") {
			t.Errorf("%s is GPL or EPL text", license)
		}
	}
	if n < 2 {
		t.Errorf("VERSIONS lists %d packages, want cytoscape and cytoscape-dagre at least", n)
	}
}
