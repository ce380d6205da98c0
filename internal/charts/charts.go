// Package charts draws the line charts of the benchmark report and of
// training runs as PNG files, with gonum.org/v1/plot.
package charts

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// palette colours the series of a chart in a fixed order.
var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 255, G: 127, B: 14, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 148, G: 103, B: 189, A: 255}, color.RGBA{R: 140, G: 86, B: 75, A: 255},
	color.RGBA{R: 227, G: 119, B: 194, A: 255}, color.RGBA{R: 127, G: 127, B: 127, A: 255},
}

// Series is one line of a chart. Points whose X or Y is not finite are
// left out.
type Series struct {
	Name string
	X, Y []float64
	// Dashed draws a dashed line; LineOnly draws no marker at the points
	// (a dense series, such as a loss per step).
	Dashed, LineOnly bool
}

// Chart is a line chart. Its axes span the data with a margin, so that no
// point is drawn on the frame, and its legend goes in the corner the data
// leave the most free.
type Chart struct {
	Title, XLabel, YLabel string
	// LogX draws the x axis on a logarithmic scale; XBytes labels it with
	// byte sizes (1 KiB, 64 KiB, 1 MiB) at powers of two.
	LogX, XBytes bool
	// XTicks, when set, are the x axis's only ticks, labelled with their
	// values (worker counts).
	XTicks []float64
	// XRange, when XRange[1] > XRange[0], is the x axis's span before its
	// margin (the same for charts drawn one above the other).
	XRange [2]float64
	// YBounds, when YBounds[1] > YBounds[0], bounds the y axis, margin
	// included (an accuracy stays within [0, 1]). YFromZero starts the y
	// axis at zero (throughputs, speed-ups, times).
	YBounds   [2]float64
	YFromZero bool
	Series    []Series
	// HLines are labelled horizontal reference lines.
	HLines map[string]float64
}

// margin is the fraction of an axis's span added at each end.
const margin = 0.04

func (c Chart) plot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = c.Title, c.XLabel, c.YLabel
	series := c.finiteSeries()
	c.setRanges(p, series)
	p.Y.Tick.Marker = distinctTicks{}
	switch {
	case len(c.XTicks) > 0:
		p.X.Tick.Marker = valueTicks(c.XTicks)
	case c.XBytes:
		p.X.Tick.Marker = byteTicks{}
	case c.LogX:
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	default:
		p.X.Tick.Marker = distinctTicks{}
	}
	if c.LogX {
		p.X.Scale = plot.LogScale{}
	}
	p.Add(plotter.NewGrid())
	for i, s := range series {
		if len(s.X) == 0 {
			continue
		}
		xy := make(plotter.XYs, len(s.X))
		for j := range s.X {
			xy[j] = plotter.XY{X: s.X[j], Y: s.Y[j]}
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, fmt.Errorf("charts: %s: %w", s.Name, err)
		}
		col := palette[i%len(palette)]
		l.Color, pts.Color, pts.Shape = col, col, draw.CircleGlyph{}
		if s.Dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		if s.LineOnly {
			p.Add(l)
			p.Legend.Add(s.Name, l)
		} else {
			p.Add(l, pts)
			p.Legend.Add(s.Name, l, pts)
		}
	}
	for _, name := range c.hlineNames() {
		y := c.HLines[name]
		l, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: y}, {X: p.X.Max, Y: y}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes = color.Gray{Y: 100}, []vg.Length{vg.Points(1), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(name, l)
	}
	c.placeLegend(p, series)
	return p, nil
}

// finiteSeries is the chart's series without the points that cannot be
// drawn: not finite, or not positive on a logarithmic axis.
func (c Chart) finiteSeries() []Series {
	out := make([]Series, len(c.Series))
	for i, s := range c.Series {
		out[i] = Series{Name: s.Name, Dashed: s.Dashed, LineOnly: s.LineOnly}
		for j := range min(len(s.X), len(s.Y)) {
			x, y := s.X[j], s.Y[j]
			if finite(x) && finite(y) && (!c.LogX || x > 0) {
				out[i].X, out[i].Y = append(out[i].X, x), append(out[i].Y, y)
			}
		}
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (c Chart) hlineNames() []string {
	names := make([]string, 0, len(c.HLines))
	for name, y := range c.HLines {
		if finite(y) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// setRanges sets the axes' spans: the data's (or XRange), with a margin at
// each end, within YBounds.
func (c Chart) setRanges(p *plot.Plot, series []Series) {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for j := range s.X {
			xmin, xmax = min(xmin, s.X[j]), max(xmax, s.X[j])
			ymin, ymax = min(ymin, s.Y[j]), max(ymax, s.Y[j])
		}
	}
	for _, name := range c.hlineNames() {
		ymin, ymax = min(ymin, c.HLines[name]), max(ymax, c.HLines[name])
	}
	if c.XRange[1] > c.XRange[0] {
		xmin, xmax = c.XRange[0], c.XRange[1]
	}
	if xmin > xmax { // no data
		xmin, xmax, ymin, ymax = 0, 1, 0, 1
	}
	if c.YFromZero {
		ymin = min(ymin, 0)
	}
	if xmin == xmax {
		xmin, xmax = xmin-1, xmax+1
		if c.LogX {
			xmin, xmax = xmax/2, xmax*2
		}
	}
	if ymin == ymax {
		d := max(math.Abs(ymin)*0.05, 0.05)
		ymin, ymax = ymin-d, ymax+d
	}
	if c.LogX {
		f := math.Pow(xmax/xmin, margin)
		p.X.Min, p.X.Max = xmin/f, xmax*f
	} else {
		d := (xmax - xmin) * margin
		p.X.Min, p.X.Max = xmin-d, xmax+d
	}
	d := (ymax - ymin) * margin
	p.Y.Min, p.Y.Max = ymin-d, ymax+d
	if c.YFromZero && ymin >= 0 {
		p.Y.Min = 0
	}
	if c.YBounds[1] > c.YBounds[0] {
		p.Y.Min, p.Y.Max = max(p.Y.Min, c.YBounds[0]), min(p.Y.Max, c.YBounds[1])
	}
}

// placeLegend puts the legend in the corner of the data area that the
// lines and points cross least.
func (c Chart) placeLegend(p *plot.Plot, series []Series) {
	longest := 0
	for _, s := range series {
		longest = max(longest, len(s.Name))
	}
	for _, name := range c.hlineNames() {
		longest = max(longest, len(name))
	}
	entries := len(series) + len(c.HLines)
	// The legend's share of the data area, from its text (about 6 points
	// a character, 14 an entry) and a chart's usual size.
	w, h := min(0.6, float64(6*longest+30)/500), min(0.8, float64(14*entries+6)/230)
	nx := func(x float64) float64 {
		if c.LogX {
			return math.Log(x/p.X.Min) / math.Log(p.X.Max/p.X.Min)
		}
		return (x - p.X.Min) / (p.X.Max - p.X.Min)
	}
	ny := func(y float64) float64 { return (y - p.Y.Min) / (p.Y.Max - p.Y.Min) }
	type corner struct{ top, left bool }
	corners := []corner{{true, false}, {true, true}, {false, false}, {false, true}}
	crossings := make([]int, len(corners))
	count := func(x, y float64) {
		for i, k := range corners {
			inX := (k.left && x < w) || (!k.left && x > 1-w)
			inY := (k.top && y > 1-h) || (!k.top && y < h)
			if inX && inY {
				crossings[i]++
			}
		}
	}
	const samples = 20 // points counted along each segment
	for _, s := range series {
		for j := range s.X {
			count(nx(s.X[j]), ny(s.Y[j]))
			if j > 0 {
				x0, y0, x1, y1 := nx(s.X[j-1]), ny(s.Y[j-1]), nx(s.X[j]), ny(s.Y[j])
				for k := 1; k < samples; k++ {
					f := float64(k) / samples
					count(x0+f*(x1-x0), y0+f*(y1-y0))
				}
			}
		}
	}
	for _, name := range c.hlineNames() {
		for k := 0; k <= samples; k++ {
			count(float64(k)/samples, ny(c.HLines[name]))
		}
	}
	best := 0
	for i := range corners {
		if crossings[i] < crossings[best] {
			best = i
		}
	}
	if crossings[best] > 0 && !(c.YBounds[1] > c.YBounds[0]) {
		// No free corner: raise the top of the y axis until the legend
		// fits above everything drawn.
		p.Y.Max += (p.Y.Max - p.Y.Min) * h / (1 - h)
		best = 0
	}
	p.Legend.Top, p.Legend.Left = corners[best].top, corners[best].left
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(-6), vg.Points(-6)
	if p.Legend.Left {
		p.Legend.XOffs = vg.Points(6)
	}
	if !p.Legend.Top {
		p.Legend.YOffs = vg.Points(6)
	}
}

// Save draws the charts one above the other into a PNG at path.
func Save(path string, charts ...Chart) error {
	const width, height = 8 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(width, height*vg.Length(len(charts)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(charts), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(18), PadY: vg.Points(18)}
	for i, c := range charts {
		p, err := c.plot()
		if err != nil {
			return err
		}
		p.Draw(tiles.At(dc, 0, i))
	}
	f, err := os.Create(filepath.Clean(path))
	if err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	defer f.Close()
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		return fmt.Errorf("charts: %s: %w", path, err)
	}
	return f.Close()
}
