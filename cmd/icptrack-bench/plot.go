package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The plot: for each workload, one horizontal bar per mode, its
// throughput's ratio to untraced; a line at 1.0; a legend below.
const (
	plotWidth  = 1000
	labelWidth = 130 // workload names, left of the bars
	rightPad   = 50
	topPad     = 50
	barHeight  = 11
	barGap     = 2
	groupGap   = 14
	charWidth  = 7 // basicfont.Face7x13
)

var (
	plotInk  = color.RGBA{0x20, 0x20, 0x20, 0xff}
	plotGrid = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	plotOne  = color.RGBA{0xb0, 0x10, 0x10, 0xff}
	modeInk  = map[string]color.RGBA{
		keyFloor:   {0x99, 0x99, 0x99, 0xff},
		keyEvents:  {0x1f, 0x77, 0xb4, 0xff},
		keyOTLP:    {0xff, 0x7f, 0x0e, 0xff},
		keyMetrics: {0x2c, 0xa0, 0x2c, 0xff},
		keyAPI:     {0xe3, 0x77, 0xc2, 0xff},
		keyStrace:  {0x94, 0x67, 0xbd, 0xff},
		keySockets: {0x17, 0xbe, 0xcf, 0xff},
		keyAll:     {0x8c, 0x56, 0x4b, 0xff},
	}
	legendOrder = []string{keyFloor, keyEvents, keyAPI, keyOTLP, keyMetrics, keyStrace, keySockets, keyAll}
)

type bar struct {
	mode  string
	ratio float64
}

type group struct {
	workload string
	bars     []bar
}

// writePlot draws the throughput ratios of res as a PNG file.
func writePlot(path string, res *results) error {
	groups, used, top := plotGroups(res)
	if len(groups) == 0 {
		return fmt.Errorf("nothing to plot in %s: no traced mode was measured", path)
	}
	xmax := math.Max(1.2, math.Ceil(top*5)/5)

	height := topPad
	for _, g := range groups {
		height += len(g.bars)*(barHeight+barGap) + groupGap
	}
	axisY := height
	legendRows := (len(used) + 2) / 3
	height += 40 + legendRows*18 + 10

	img := image.NewRGBA(image.Rect(0, 0, plotWidth, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	x0, x1 := labelWidth, plotWidth-rightPad
	xOf := func(v float64) int { return x0 + int(v/xmax*float64(x1-x0)) }

	title := fmt.Sprintf("icptrack: throughput, ratio to untraced (median of %d runs each)", res.Settings.Reps)
	if res.Settings.Reps == 1 {
		title = "icptrack: throughput, ratio to untraced (one run each)"
	}
	text(img, x0, 20, title, plotInk)
	text(img, x0, 36, fmt.Sprintf("%s, %d CPUs, Linux %s, %s", res.Machine.CPU, res.Machine.CPUs, res.Machine.Kernel, res.Settings.Date), plotInk)

	for v := 0.0; v <= xmax+1e-9; v += 0.2 {
		x := xOf(v)
		fill(img, image.Rect(x, topPad-4, x+1, axisY), plotGrid)
		text(img, x-10, axisY+16, fmt.Sprintf("%.1f", v), plotInk)
	}
	y := topPad
	for _, g := range groups {
		gh := len(g.bars) * (barHeight + barGap)
		text(img, x0-8-charWidth*len(g.workload), y+gh/2+4, g.workload, plotInk)
		for _, b := range g.bars {
			fill(img, image.Rect(x0, y, max(xOf(b.ratio), x0+1), y+barHeight), modeInk[b.mode])
			text(img, max(xOf(b.ratio), x0)+4, y+barHeight-1, fmt.Sprintf("%.2f", b.ratio), plotInk)
			y += barHeight + barGap
		}
		y += groupGap
	}
	one := xOf(1)
	fill(img, image.Rect(one-1, topPad-6, one+1, axisY), plotOne)
	fill(img, image.Rect(x0, axisY, x1, axisY+1), plotInk)
	text(img, one+4, topPad-8, "1.0 = untraced", plotOne)

	ly := axisY + 40
	for i, key := range used {
		lx := x0 + (i%3)*270
		fill(img, image.Rect(lx, ly-10, lx+14, ly), modeInk[key])
		text(img, lx+20, ly, modeLabels[key], plotInk)
		if i%3 == 2 {
			ly += 18
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plotGroups are the workloads with a measured traced mode, the mode keys
// used (in legend order), and the largest ratio.
func plotGroups(res *results) ([]group, []string, float64) {
	var groups []group
	var used []string
	var top float64
	for _, w := range res.Workloads {
		g := group{workload: w.Name}
		for _, r := range res.Rows {
			if r.Workload != w.Name || !r.traced || r.Runs == 0 || r.Ratio == 0 {
				continue
			}
			g.bars = append(g.bars, bar{r.Mode, r.Ratio})
			top = math.Max(top, r.Ratio)
			if !slices.Contains(used, r.Mode) {
				used = append(used, r.Mode)
			}
		}
		if len(g.bars) > 0 {
			groups = append(groups, g)
		}
	}
	var ordered []string
	for _, k := range legendOrder {
		if slices.Contains(used, k) {
			ordered = append(ordered, k)
		}
	}
	return groups, ordered, top
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// text draws s with its baseline at y.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
