//go:build ignore

// Command main runs the variants of BenchmarkAgentToPublisherTCP that the
// stages' throughput target compares, from the test binaries given,
// alternating binaries and variants round after round, and prints the
// median measurements/s of each and the ratios of the stages variants to
// the variant without stages of the same binary. See run.sh.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
)

var variants = []string{"sealed=false", "stages", "stages=agent"}

var rate = regexp.MustCompile(`([0-9.]+) measurements/s`)

func main() {
	rounds := flag.Int("rounds", 7, "rounds: each runs every variant of every binary once")
	n := flag.Int("n", 3_000_000, "measurements a run")
	flag.Parse()
	bins := flag.Args()
	if len(bins) == 0 {
		log.Fatal("usage: main [-rounds N] [-n N] publisher.test...")
	}
	got := map[string][]float64{} // by binary, variant and inflight
	key := func(bin, v string, inflight int) string {
		return fmt.Sprintf("%s %s/inflight=%d", filepath.Base(bin), v, inflight)
	}
	for r := range *rounds {
		for _, bin := range bins {
			for _, inflight := range []int{1, 4} {
				for _, v := range variants {
					bench := fmt.Sprintf("^BenchmarkAgentToPublisherTCP$/^%s$/^inflight=%d$", regexp.QuoteMeta(v), inflight)
					out, err := exec.Command(bin, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", strconv.Itoa(*n)+"x").CombinedOutput()
					m := rate.FindSubmatch(out)
					if err != nil || m == nil {
						log.Fatalf("%s %s: %v\n%s", bin, bench, err, out)
					}
					x, _ := strconv.ParseFloat(string(m[1]), 64)
					k := key(bin, v, inflight)
					got[k] = append(got[k], x)
				}
			}
		}
		fmt.Fprintf(os.Stderr, "round %d of %d done\n", r+1, *rounds)
	}
	for _, bin := range bins {
		for _, inflight := range []int{1, 4} {
			plain := median(got[key(bin, "sealed=false", inflight)])
			for _, v := range variants {
				xs := got[key(bin, v, inflight)]
				fmt.Printf("%-44s median %6.2fM/s  (runs", key(bin, v, inflight), median(xs)/1e6)
				for _, x := range xs {
					fmt.Printf(" %.2f", x/1e6)
				}
				fmt.Printf(")  ratio %.3f\n", median(xs)/plain)
			}
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
