package nn

import "math/rand/v2"

// dropout zeroes each input with probability rate during training and scales
// the rest by 1/(1−rate) (inverted dropout), so that inference is the
// identity. The mask of a value depends only on the model seed, the training
// step, the layer's position, the sample's identity and the unit: the same
// sample gets the same mask whichever worker or batch row computes it.
type dropout struct {
	width int
	rate  float64
	index uint64

	scale []float64 // the last mask: 0 or 1/(1−rate) per value, nil in inference
	y, dx []float64
}

func (d *dropout) outputSize() int                  { return d.width }
func (d *dropout) numParams() int                   { return 0 }
func (d *dropout) bind(_, _ []float64)              {}
func (d *dropout) initialize(*rand.Rand, []float64) {}
func (d *dropout) regularized() []regSpan           { return nil }

// keeps reports whether the value (row, unit) survives in this pass.
func (d *dropout) keeps(p *pass, row, unit int) bool { return keeps(p, d.index<<40, row, unit, d.rate) }

// keeps reports whether unit of row survives a dropout of rate in this
// pass, for the mask named key (a layer's position, shifted left 40 bits,
// and the mask's number below that): a pure function of the model seed,
// the step, the key, the sample's identity and the unit.
func keeps(p *pass, key uint64, row, unit int, rate float64) bool {
	k := mix64(p.seed ^ mix64(p.step^mix64(key^p.sampleID(row))))
	u := float64(mix64(k+uint64(unit)*0x9e3779b97f4a7c15)>>11) * 0x1p-53
	return u >= rate
}

// dropoutMask fills mask, rows×width, with 0 or 1/(1−rate) per value.
func dropoutMask(mask []float64, p *pass, key uint64, rows, width int, rate float64) {
	keep := 1 / (1 - rate)
	for r := range rows {
		for j := range width {
			if keeps(p, key, r, j, rate) {
				mask[r*width+j] = keep
			} else {
				mask[r*width+j] = 0
			}
		}
	}
}

func (d *dropout) forward(x []float64, rows int, p *pass) []float64 {
	if !p.train || d.rate == 0 {
		d.scale = nil
		return x
	}
	n := rows * d.width
	d.scale = grow(d.scale, n)
	d.y = grow(d.y, n)
	keep := 1 / (1 - d.rate)
	for r := 0; r < rows; r++ {
		for j := 0; j < d.width; j++ {
			i := r*d.width + j
			if d.keeps(p, r, j) {
				d.scale[i] = keep
			} else {
				d.scale[i] = 0
			}
			d.y[i] = x[i] * d.scale[i]
		}
	}
	return d.y
}

func (d *dropout) backward(dy []float64, rows int, needDX bool) []float64 {
	if !needDX {
		return nil
	}
	if d.scale == nil {
		return dy
	}
	d.dx = grow(d.dx, rows*d.width)
	for i := range d.dx {
		d.dx[i] = dy[i] * d.scale[i]
	}
	return d.dx
}
