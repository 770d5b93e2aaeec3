package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// plotSeries is one panel of the plot: the rejected writes of one run.
type plotSeries struct {
	label   string
	color   color.RGBA
	rejects []time.Duration // since the fault was injected
}

const (
	plotW, panelH    = 900, 110
	marginL, marginR = 20, 20
	titleH, axisH    = 22, 34
	plotBucket       = 50 * time.Millisecond
)

// writePlot draws one panel per series, stacked: x is time since the fault was
// injected (grid every 0.5 s, darker every 1 s, black at 0), bars are rejected
// writes per 50 ms (the full height is 50, the writer's pace). Each panel is
// labelled with its series and its count of rejected writes; seconds are marked
// under the last panel.
func writePlot(path, title string, series []plotSeries, from, to time.Duration) error {
	h := titleH + panelH*len(series) + axisH
	img := image.NewRGBA(image.Rect(0, 0, plotW, h))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	black := color.RGBA{0, 0, 0, 255}
	text(img, marginL, 15, title, black)
	span := to - from
	x := func(d time.Duration) int {
		return marginL + int(float64(plotW-marginL-marginR)*float64(d-from)/float64(span))
	}
	for i, s := range series {
		top := titleH + i*panelH
		base := top + panelH - 10
		// Grid.
		for g := from.Truncate(500 * time.Millisecond); g <= to; g += 500 * time.Millisecond {
			c := color.RGBA{225, 225, 225, 255}
			if g%time.Second == 0 {
				c = color.RGBA{170, 170, 170, 255}
			}
			if g == 0 {
				c = color.RGBA{0, 0, 0, 255}
			}
			if g >= from {
				fill(img, image.Rect(x(g), top, x(g)+1, base), c)
			}
		}
		fill(img, image.Rect(marginL, base, plotW-marginR, base+1), color.RGBA{0, 0, 0, 255})
		// Legend: swatch and label.
		fill(img, image.Rect(plotW-marginR-14, top+2, plotW-marginR-2, top+14), s.color)
		label := fmt.Sprintf("%s: %d writes rejected", s.label, len(s.rejects))
		text(img, plotW-marginR-20-7*len(label), top+12, label, black)
		// Bars.
		counts := map[int]int{}
		for _, r := range s.rejects {
			if r >= from && r < to {
				counts[int((r-from)/plotBucket)]++
			}
		}
		for b, n := range counts {
			x0 := x(from + time.Duration(b)*plotBucket)
			x1 := max(x(from+time.Duration(b+1)*plotBucket)-1, x0+1)
			bh := min(n, 50) * (base - top - 16) / 50
			fill(img, image.Rect(x0, base-bh, x1, base), s.color)
		}
	}
	// Seconds since the fault under the last panel.
	axisY := titleH + panelH*len(series) + 4
	for g := from.Truncate(time.Second); g <= to; g += time.Second {
		if g >= from {
			text(img, x(g)-3, axisY+10, fmt.Sprintf("%ds", int(g/time.Second)), black)
		}
	}
	text(img, plotW-marginR-7*len("time since the fault"), axisY+26, "time since the fault", color.RGBA{90, 90, 90, 255})
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create plot dir: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create plot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		_ = f.Close()
		return fmt.Errorf("encode plot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// text draws s with its baseline at (x, y) in the 7x13 basic font.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
