package bench

import "fmt"

// kindsSection tables the sweep's other element kinds (-allreduce-kinds)
// against float32 at every N and size: every kind reduces a size's bytes/8
// values, so the table sizes rows by the float32 vector, half the float64
// size.
func (r *runner) kindsSection(w writer) {
	if len(r.cfg.Kinds) == 0 {
		return
	}
	kinds := append([]string{"float64"}, r.cfg.Kinds...)
	impl := func(k string) string {
		if k == "float64" {
			return "ringtrain"
		}
		return "ringtrain-" + k
	}
	w("## All-reduce by element kind\n\n")
	w("The same number of values (a size's bytes/8) reduced as each kind over the default data plane; fp16 and bf16 are float32 values ")
	w("compressed to 16 bits with error feedback. Rows are sized by the float32 vector; each cell is the median time and its ratio to float32's.\n\n")
	for _, n := range r.cfg.AllreduceWorkers {
		w("### N = %d%s\n\n| float32 size |", n, r.dagger(n))
		for _, k := range kinds {
			w(" %s |", k)
		}
		w("\n|---|")
		for range kinds {
			w("---|")
		}
		w("\n")
		for _, size := range r.cfg.Sizes {
			base, ok := r.one(func(x Record) bool {
				return x.Suite == "allreduce" && x.Impl == "ringtrain-float32" && x.Workers == n && x.Bytes == size
			})
			row := fmt.Sprintf("| %s |", byteSize(size/2))
			for _, k := range kinds {
				x, found := r.one(func(x Record) bool {
					return x.Suite == "allreduce" && x.Impl == impl(k) && x.Workers == n && x.Bytes == size
				})
				switch {
				case !found:
					row += " – |"
				case ok:
					row += fmt.Sprintf(" %s (%.2f×) |", duration(x.Seconds), x.Seconds/base.Seconds)
				default:
					row += fmt.Sprintf(" %s |", duration(x.Seconds))
				}
			}
			w("%s\n", row)
		}
		w("\n")
	}
}

// netsimCompressionSection tables suite netsim-compression: the all-reduce
// part of a 784-512-512-10 step, uncompressed and compressed, on loopback
// and on every simulated link.
func (r *runner) netsimCompressionSection(w writer) {
	recs := r.find(func(x Record) bool { return x.Suite == "netsim-compression" && x.StepMillis != nil })
	if len(recs) == 0 {
		return
	}
	w("## Compression on simulated links\n\n")
	w("The all-reduce part of a 784-512-512-10 step (`step_ms.allreduce`, ms), median of %d interleaved rounds, and its ratio to the uncompressed step's.\n\n", netsimRounds)
	w("| N | link | uncompressed | fp16 | bf16 |\n|---|---|---|---|---|\n")
	for _, n := range r.cfg.AllreduceWorkers {
		for _, rate := range append([]int64{0}, netsimRates...) {
			link := "loopback"
			if rate > 0 {
				link = gbps(rate)
			}
			base, ok := r.one(func(x Record) bool {
				return x.Suite == "netsim-compression" && x.Impl == "ringtrain" && x.Workers == n && x.LinkBits == rate && x.StepMillis != nil
			})
			if !ok {
				continue
			}
			row := fmt.Sprintf("| %d%s | %s | %.2f |", n, r.dagger(n), link, base.StepMillis.Allreduce)
			for _, c := range []string{"fp16", "bf16"} {
				if x, ok := r.one(func(x Record) bool {
					return x.Suite == "netsim-compression" && x.Impl == "ringtrain-"+c && x.Workers == n && x.LinkBits == rate && x.StepMillis != nil
				}); ok {
					row += fmt.Sprintf(" %.2f (%.2f×) |", x.StepMillis.Allreduce, x.StepMillis.Allreduce/base.StepMillis.Allreduce)
				} else {
					row += " – |"
				}
			}
			w("%s\n", row)
		}
	}
	w("\n")
}
