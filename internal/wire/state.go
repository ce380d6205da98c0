package wire

import (
	"errors"
	"fmt"
	"io"

	"ringtrain/internal/nn"
	pb "ringtrain/proto"
)

// State is a replica's state as it travels: the header's facts, the
// parameters and, when the header names slots, the optimiser state.
type State struct {
	Header *pb.StateHeader
	Params []float64
	Opt    nn.OptimizerState
}

// SendState streams s: the header in the first chunk, then the parameters
// followed by every optimiser slot, ChunkBytes at a time.
func SendState(send func(*pb.StateChunk) error, s *State) error {
	h := s.Header
	h.Params = uint64(len(s.Params))
	h.Iterations = s.Opt.Iterations
	h.Slots = h.Slots[:0]
	vectors := [][]float64{s.Params}
	for _, sl := range s.Opt.Slots {
		if len(sl.Values) != len(s.Params) {
			return fmt.Errorf("wire: optimizer slot %q has %d values for %d parameters", sl.Name, len(sl.Values), len(s.Params))
		}
		h.Slots = append(h.Slots, sl.Name)
		vectors = append(vectors, sl.Values)
	}
	const per = ChunkBytes / 8
	var offset uint64
	first := true
	for _, v := range vectors {
		for lo := 0; lo < len(v) || (first && len(v) == 0); lo += per {
			hi := min(lo+per, len(v))
			c := &pb.StateChunk{Offset: offset, Data: AppendFloats(make([]byte, 0, 8*(hi-lo)), v[lo:hi])}
			if first {
				c.Header, first = h, false
			}
			if err := send(c); err != nil {
				return err
			}
			offset += uint64(hi - lo)
		}
	}
	return nil
}

// ReceiveState reads a state stream to its end. It rejects a stream whose
// header is missing or announces more than maxParams parameters, whose
// chunks leave gaps or overlap, or that ends early or runs long.
func ReceiveState(recv func() (*pb.StateChunk, error), maxParams uint64) (*State, error) {
	c, err := recv()
	if err != nil {
		return nil, err
	}
	h := c.GetHeader()
	if h == nil {
		return nil, errors.New("wire: state stream does not start with a header")
	}
	if h.Params > maxParams {
		return nil, fmt.Errorf("wire: state of %d parameters, the model has %d", h.Params, maxParams)
	}
	if len(h.Slots) > 8 {
		return nil, fmt.Errorf("wire: state with %d optimizer slots", len(h.Slots))
	}
	total := h.Params * uint64(1+len(h.Slots))
	all := make([]float64, total)
	var got uint64
	for {
		if c.Offset != got {
			return nil, fmt.Errorf("wire: state chunk at value %d, expected %d", c.Offset, got)
		}
		if len(c.Data)%8 != 0 || uint64(len(c.Data)/8) > total-got {
			return nil, fmt.Errorf("wire: state chunk of %d bytes at value %d overruns %d values", len(c.Data), got, total)
		}
		DecodeFloats(all[got:got+uint64(len(c.Data)/8)], c.Data)
		got += uint64(len(c.Data) / 8)
		c, err = recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if c.Header != nil {
			return nil, errors.New("wire: second header in a state stream")
		}
	}
	if got != total {
		return nil, fmt.Errorf("wire: state stream ended after %d of %d values", got, total)
	}
	s := &State{Header: h, Params: all[:h.Params], Opt: nn.OptimizerState{Iterations: h.Iterations}}
	for i, name := range h.Slots {
		lo := h.Params * uint64(i+1)
		s.Opt.Slots = append(s.Opt.Slots, nn.Slot{Name: name, Values: all[lo : lo+h.Params]})
	}
	return s, nil
}
