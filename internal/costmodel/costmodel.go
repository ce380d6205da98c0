// Package costmodel predicts the time of the ring all-reduce and of a
// data-parallel training step from a few fitted constants, so that a user
// can see how a job would scale on a cluster's network before asking for
// one.
//
// The ring all-reduce of S bytes on N ranks takes 2(N−1) rounds; every
// round starts with a latency α (a message's way through both stacks and
// the wire's one-way delay), and the ring moves 2(N−1)/N·S bytes through
// every rank, pipelined in segments, at the pace of its slowest stage: the
// link (8/B seconds a byte at B bits a second) or the rank's own handling
// of a byte (γ: copying, checksumming and adding it). So
//
//	T_allreduce(N, S, B) = 2(N−1)·α + 2(N−1)/N · S · max(8/B, γ)
//
// A step adds the rank's compute and optimizer time, which do not depend
// on N in weak scaling (a fixed batch per worker):
//
//	T_step(N) = C + O + T_allreduce(N, S, B),  efficiency(N) = (C + O) / T_step(N).
//
// On a cluster every rank has its own cores. Ranks that share c cores (the
// simulated networks of one machine) each get c/N of them once N > c, so
// their latency and per-byte time grow by N/c: Ring.Sharing says so.
package costmodel

import (
	"errors"
	"math"
)

// Ring holds the fitted constants of the all-reduce.
type Ring struct {
	// Alpha is the latency of one round, seconds.
	Alpha float64
	// Gamma is a rank's processing time per byte moved, seconds.
	Gamma float64
}

// AllReduce predicts the seconds an all-reduce of bytes takes on n ranks
// joined by links of rateBits bits a second (0: unlimited), with an extra
// one-way delay of delay seconds per message.
func (r Ring) AllReduce(n int, bytes float64, rateBits, delay float64) float64 {
	if n <= 1 {
		return 0
	}
	perByte := r.Gamma
	if rateBits > 0 {
		perByte = math.Max(perByte, 8/rateBits)
	}
	rounds := float64(2 * (n - 1))
	return rounds*(r.Alpha+delay) + rounds/float64(n)*bytes*perByte
}

// Sharing returns r for n ranks sharing cores cores: α and γ grow by
// n/cores once there are more ranks than cores. Zero cores means a core
// or more a rank.
func (r Ring) Sharing(n int, cores float64) Ring {
	if cores <= 0 || float64(n) <= cores {
		return r
	}
	k := float64(n) / cores
	return Ring{Alpha: r.Alpha * k, Gamma: r.Gamma * k}
}

// Sample is one measured all-reduce.
type Sample struct {
	N        int
	Bytes    float64
	RateBits float64 // 0: unlimited
	Seconds  float64
	// Cores is how many cores the ranks shared (0: a core or more each).
	Cores float64
}

// Predict is r's prediction for s.
func (r Ring) Predict(s Sample) float64 {
	return r.Sharing(s.N, s.Cores).AllReduce(s.N, s.Bytes, s.RateBits, 0)
}

// Fit finds the α and γ that minimise the squared relative error of the
// prediction over samples: for every γ on a fine logarithmic grid the best
// α is a weighted least-squares solution in closed form.
func Fit(samples []Sample) (Ring, error) {
	if len(samples) < 2 {
		return Ring{}, errors.New("costmodel: fitting needs at least two samples")
	}
	best, bestErr := Ring{}, math.Inf(1)
	for e := -12.0; e <= -7; e += 0.005 { // γ from 1 ps to 10 ns a byte
		gamma := math.Pow(10, e)
		// Relative residual (2(N−1)α + b_i − t_i)/t_i with b_i the
		// bandwidth term: α = Σ a_i(t_i−b_i)/t_i² / Σ a_i²/t_i².
		var num, den float64
		for _, s := range samples {
			a := Ring{Alpha: 1}.Sharing(s.N, s.Cores).Alpha * float64(2*(s.N-1))
			b := Ring{Gamma: gamma}.Predict(s)
			num += a * (s.Seconds - b) / (s.Seconds * s.Seconds)
			den += a * a / (s.Seconds * s.Seconds)
		}
		alpha := 0.0
		if den > 0 {
			alpha = math.Max(0, num/den)
		}
		r := Ring{Alpha: alpha, Gamma: gamma}
		if err := r.RelError(samples); err < bestErr {
			best, bestErr = r, err
		}
	}
	return best, nil
}

// RelError is the root mean square of the relative errors of r's
// predictions for samples.
func (r Ring) RelError(samples []Sample) float64 {
	var sum float64
	for _, s := range samples {
		d := (r.Predict(s) - s.Seconds) / s.Seconds
		sum += d * d
	}
	return math.Sqrt(sum / float64(len(samples)))
}

// Step is a training step's costs on one rank.
type Step struct {
	// Compute and Optimizer are the rank's seconds per step outside the
	// all-reduce.
	Compute, Optimizer float64
	// GradientBytes is the size of the reduced vector.
	GradientBytes float64
}

// Time predicts the step's seconds on n ranks over links of rateBits (0:
// unlimited) with a one-way delay.
func (s Step) Time(r Ring, n int, rateBits, delay float64) float64 {
	return s.Compute + s.Optimizer + r.AllReduce(n, s.GradientBytes, rateBits, delay)
}

// Efficiency is the weak-scaling efficiency at n ranks: a single rank's
// step time over the step time at n.
func (s Step) Efficiency(r Ring, n int, rateBits, delay float64) float64 {
	return (s.Compute + s.Optimizer) / s.Time(r, n, rateBits, delay)
}
