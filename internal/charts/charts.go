// Package charts draws the line charts of the benchmark report and of
// training runs as PNG files, with gonum.org/v1/plot.
package charts

import (
	"fmt"
	"image/color"
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

// Series is one line of a chart.
type Series struct {
	Name   string
	X, Y   []float64
	Dashed bool
}

// Chart is a line chart.
type Chart struct {
	Title, XLabel, YLabel string
	// LogX draws the x axis on a logarithmic scale.
	LogX   bool
	Series []Series
	// HLines are labelled horizontal reference lines.
	HLines map[string]float64
}

func (c Chart) plot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = c.Title, c.XLabel, c.YLabel
	if c.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	for i, s := range c.Series {
		if len(s.X) == 0 || len(s.X) != len(s.Y) {
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
		p.Add(l, pts)
		p.Legend.Add(s.Name, l, pts)
	}
	names := make([]string, 0, len(c.HLines))
	for name := range c.HLines {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		y := c.HLines[name]
		l, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: y}, {X: p.X.Max, Y: y}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes = color.Gray{Y: 100}, []vg.Length{vg.Points(1), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(name, l)
	}
	return p, nil
}

// Save draws the charts one above the other into a PNG at path.
func Save(path string, charts ...Chart) error {
	const width, height = 8 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(width, height*vg.Length(len(charts)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(charts), Cols: 1}
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
