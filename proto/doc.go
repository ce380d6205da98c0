// Package ringtrainpb holds the protocol of a ringtrain job, generated from
// ringtrain.proto.
package ringtrainpb

//go:generate sh generate.sh
