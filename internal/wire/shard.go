package wire

import (
	"errors"
	"fmt"
	"io"

	"ringtrain/internal/mnist"
	"ringtrain/internal/sampler"
	pb "ringtrain/proto"
)

// imagesPerChunk keeps a shard chunk under ChunkBytes for MNIST-sized
// images.
const imagesPerChunk = 1024

// SendShard streams the lanes of a plan to the worker that owns them: the
// header (lane layout, image size), then the images lane after lane with
// their sample ids and labels.
func SendShard(send func(*pb.ShardChunk) error, data *mnist.Set, lanes *sampler.Lanes) error {
	ids := lanes.Samples()
	hdr := &pb.ShardChunk{FirstLane: uint32(lanes.First), TotalImages: uint32(len(ids)),
		Rows: uint32(data.Rows), Cols: uint32(data.Cols)}
	for _, m := range lanes.Members {
		hdr.LaneSizes = append(hdr.LaneSizes, uint32(len(m)))
	}
	per := max(1, min(imagesPerChunk, ChunkBytes/max(1, data.Features())))
	for lo := 0; lo < len(ids) || lo == 0; lo += per {
		hi := min(lo+per, len(ids))
		c := &pb.ShardChunk{}
		if lo == 0 {
			c = hdr
		}
		for _, id := range ids[lo:hi] {
			c.SampleIds = append(c.SampleIds, uint32(id))
			c.Labels = append(c.Labels, data.Labels[id])
			c.Pixels = append(c.Pixels, data.Image(id)...)
		}
		if err := send(c); err != nil {
			return err
		}
	}
	return nil
}

// Shard is what a worker receives: its images as a data set in lane order,
// their global sample ids, and its lanes in local indices.
type Shard struct {
	Data      *mnist.Set
	SampleIDs []int
	Lanes     *sampler.Lanes
}

// ReceiveShard reads a shard stream to its end and checks it against the
// header and against what the job expects: lanes of the job's count, images
// of the expected size, labels 0–9, exactly the announced number of images.
func ReceiveShard(recv func() (*pb.ShardChunk, error), firstLane, wantLanes, steps int, seed uint64, wantFeatures int) (*Shard, error) {
	c, err := recv()
	if err != nil {
		return nil, err
	}
	if len(c.LaneSizes) != wantLanes || int(c.FirstLane) != firstLane {
		return nil, fmt.Errorf("wire: shard holds %d lanes from lane %d, this worker owns %d from lane %d",
			len(c.LaneSizes), c.FirstLane, wantLanes, firstLane)
	}
	if uint64(c.Rows)*uint64(c.Cols) != uint64(wantFeatures) {
		return nil, fmt.Errorf("wire: shard images are %d×%d, the model takes %d values", c.Rows, c.Cols, wantFeatures)
	}
	var sum uint64
	for i, n := range c.LaneSizes {
		if int(n) < steps {
			return nil, fmt.Errorf("wire: lane %d has %d images, fewer than the %d steps of an epoch", i, n, steps)
		}
		sum += uint64(n)
	}
	if sum != uint64(c.TotalImages) || sum > 1<<24 {
		return nil, fmt.Errorf("wire: shard header announces %d images, its lanes %d", c.TotalImages, sum)
	}
	total, f := int(c.TotalImages), int(c.Rows*c.Cols)
	rows, cols, first, laneSizes := int(c.Rows), int(c.Cols), int(c.FirstLane), c.LaneSizes
	// Grow with the data that arrives, not with what the header claims.
	var ids []int
	var labels, pixels []byte
	for {
		n := len(c.SampleIds)
		if len(c.Labels) != n || len(c.Pixels) != n*f {
			return nil, fmt.Errorf("wire: shard chunk with %d ids, %d labels and %d pixel bytes", n, len(c.Labels), len(c.Pixels))
		}
		if len(ids)+n > total {
			return nil, fmt.Errorf("wire: shard stream carries more than the %d images announced", total)
		}
		for i, id := range c.SampleIds {
			if c.Labels[i] > 9 {
				return nil, fmt.Errorf("wire: image %d has label %d", len(ids), c.Labels[i])
			}
			ids = append(ids, int(id))
		}
		labels = append(labels, c.Labels...)
		pixels = append(pixels, c.Pixels...)
		c, err = recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(ids) != total {
		return nil, fmt.Errorf("wire: shard stream ended after %d of %d images", len(ids), total)
	}
	img := &mnist.Images{Count: total, Rows: rows, Cols: cols, Pixels: pixels}
	set, err := mnist.NewSet(img, labels)
	if err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	lanes := &sampler.Lanes{First: first, Steps: steps, Seed: seed}
	off := 0
	for _, n := range laneSizes {
		local := make([]int, n)
		for i := range local {
			local[i] = off + i
		}
		lanes.Members = append(lanes.Members, local)
		off += int(n)
	}
	return &Shard{Data: set, SampleIDs: ids, Lanes: lanes}, nil
}
