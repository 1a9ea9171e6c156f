package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/cpu"

	"github.com/seq2gpt/seq2gpt/ops"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "The version, Go, BLAS and CPU features of this build",
		Long: `Print the module version (and the commit it was built from, when the build
recorded it), the Go release that built it, the BLAS its matrix products use,
and the CPU's features that matter to them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionText())
			return err
		},
	}
}

func versionText() string {
	var b strings.Builder
	version, commit := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		if version == "" {
			version = "(devel)"
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = ", modified"
				}
			}
		}
		if rev != "" {
			commit = fmt.Sprintf(" (commit %.12s%s)", rev, modified)
		}
	}
	fmt.Fprintf(&b, "seq2gpt %s%s\n", version, commit)
	fmt.Fprintf(&b, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "blas: %s\n", ops.BLASKernel())
	fmt.Fprintf(&b, "cpu: %d cores; features: %s\n", runtime.NumCPU(), strings.Join(cpuFeatures(), " "))
	return b.String()
}

// cpuFeatures are the CPU's SIMD features a BLAS kernel may use.
func cpuFeatures() []string {
	var fs []string
	add := func(ok bool, name string) {
		if ok {
			fs = append(fs, name)
		}
	}
	switch runtime.GOARCH {
	case "amd64", "386":
		x := cpu.X86
		add(x.HasSSE2, "sse2")
		add(x.HasSSE41, "sse4.1")
		add(x.HasSSE42, "sse4.2")
		add(x.HasAVX, "avx")
		add(x.HasFMA, "fma")
		add(x.HasAVX2, "avx2")
		add(x.HasAVX512F, "avx512f")
		add(x.HasAVX512BW, "avx512bw")
		add(x.HasAVX512VL, "avx512vl")
		add(x.HasAVX512VNNI, "avx512vnni")
		add(x.HasAVX512BF16, "avx512bf16")
	case "arm64":
		a := cpu.ARM64
		add(a.HasASIMD, "asimd")
		add(a.HasFPHP, "fphp")
		add(a.HasASIMDHP, "asimdhp")
		add(a.HasASIMDDP, "asimddp")
		add(a.HasSVE, "sve")
		add(a.HasSVE2, "sve2")
	}
	if len(fs) == 0 {
		return []string{"(none known)"}
	}
	return fs
}
