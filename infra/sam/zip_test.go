package sam_test

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vitals-dev/vitals/infra/sam"
)

func TestZipBootstrap(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bin")
	if err := os.WriteFile(src, []byte("\x7fELF fake"), 0o600); err != nil {
		t.Fatal(err)
	}
	var zips [2][]byte
	for i := range zips {
		dst := filepath.Join(dir, "out.zip")
		if err := sam.ZipBootstrap(dst, src); err != nil {
			t.Fatal(err)
		}
		zips[i], _ = os.ReadFile(dst)
	}
	if !bytes.Equal(zips[0], zips[1]) {
		t.Error("the same binary gave two different zips (CodeSha256 would change on every deploy)")
	}
	zr, err := zip.NewReader(bytes.NewReader(zips[0]), int64(len(zips[0])))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode().Perm() != 0o755 {
		t.Fatalf("zip entries %v, want one executable bootstrap", zr.File)
	}
	rc, _ := zr.File[0].Open()
	got, _ := io.ReadAll(rc)
	if string(got) != "\x7fELF fake" {
		t.Errorf("bootstrap content %q", got)
	}
}

func TestCheckLinuxARM64(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	err = sam.CheckLinuxARM64(self)
	if isArm := runtime.GOOS == "linux" && runtime.GOARCH == "arm64"; isArm != (err == nil) {
		t.Errorf("CheckLinuxARM64(test binary for %s/%s) = %v", runtime.GOOS, runtime.GOARCH, err)
	}
	if sam.CheckLinuxARM64(filepath.Join("testdata", "events", "query-healthz.json")) == nil {
		t.Error("a JSON file passed as an arm64 binary")
	}
}
