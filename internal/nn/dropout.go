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

func (d *dropout) outputSize() int       { return d.width }
func (d *dropout) numParams() int        { return 0 }
func (d *dropout) bind(_, _ []float64)   {}
func (d *dropout) initialize(*rand.Rand) {}
func (d *dropout) penalty() float64      { return 0 }
func (d *dropout) addPenaltyGradient()   {}

// keeps reports whether the value (row, unit) survives in this pass.
func (d *dropout) keeps(p *pass, row, unit int) bool {
	key := mix64(p.seed ^ mix64(p.step^mix64(d.index<<40^p.sampleID(row))))
	u := float64(mix64(key+uint64(unit)*0x9e3779b97f4a7c15)>>11) * 0x1p-53
	return u >= d.rate
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
