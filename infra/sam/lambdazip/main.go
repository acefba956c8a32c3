// Command lambdazip builds every function of template.yaml for AWS Lambda
// (linux/arm64, through the Makefile's build-<LogicalId> target, exactly as
// `sam build` does) and packs each into <out>/<name>.zip with the binary as
// `bootstrap`, ready for `aws lambda update-function-code --zip-file` or any
// deployment tool. It needs Go and make, not the SAM CLI. `make lambda` runs it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vitals-dev/vitals/infra/sam"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lambdazip:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lambdazip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tplPath := fs.String("template", "template.yaml", "SAM template listing the functions")
	out := fs.String("out", "dist", "output directory for <name>.zip")
	makeCmd := fs.String("make", "make", "make command (the Makefile beside the template holds build-<LogicalId>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tpl, err := sam.Load(*tplPath)
	if err != nil {
		return err
	}
	outAbs, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	for _, f := range tpl.Functions {
		artifacts := filepath.Join(outAbs, "lambda", f.Name)
		if err := os.MkdirAll(artifacts, 0o750); err != nil {
			return err
		}
		cmd := exec.Command(*makeCmd, "--no-print-directory", "-C", filepath.Dir(*tplPath), "build-"+f.LogicalID, "ARTIFACTS_DIR="+artifacts)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("make build-%s: %w", f.LogicalID, err)
		}
		bin := filepath.Join(artifacts, "bootstrap")
		if err := sam.CheckLinuxARM64(bin); err != nil {
			return err
		}
		zipPath := filepath.Join(outAbs, f.Name+".zip")
		if err := sam.ZipBootstrap(zipPath, bin); err != nil {
			return err
		}
		bi, _ := os.Stat(bin)
		zi, _ := os.Stat(zipPath)
		fmt.Fprintf(stdout, "%s/%s.zip  %s: bootstrap linux/arm64, %.2f MiB (zip %.2f MiB)\n", *out, f.Name, f.LogicalID, mib(bi.Size()), mib(zi.Size()))
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
