package sam

import (
	"archive/zip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"time"
)

// zipTime is the fixed modification time written into zips, so the same
// binary always gives the same zip (and the same CodeSha256 on deploy).
var zipTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ZipBootstrap writes a Lambda deployment package to dst: one file named
// bootstrap, mode 0755 (the provided.al2023 runtime executes it), holding
// the binary at src.
func ZipBootstrap(dst, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close() //nolint:errcheck // read-only input; a close error loses nothing
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	zw := zip.NewWriter(out)
	hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: zipTime}
	hdr.SetMode(0o755) // also marks the entry as made on Unix, where the mode is kept
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, in); err != nil {
		return fmt.Errorf("zip %s: %w", src, err)
	}
	return zw.Close()
}

// CheckLinuxARM64 fails unless path is a Linux arm64 ELF executable, the
// only thing an arm64 provided.al2023 function can run.
func CheckLinuxARM64(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: not an ELF binary: %w", path, err)
	}
	defer f.Close() //nolint:errcheck // read-only ELF check
	if f.Machine != elf.EM_AARCH64 || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: %s %s %s, want a linux/arm64 executable", path, f.Machine, f.OSABI, f.Type)
	}
	return nil
}
