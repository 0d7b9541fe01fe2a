package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// An operator's snapshot file is the store's snapshot (a bbolt copy, which
// holds sealed records and the keyring wrapped by the seal) sealed once
// more as a whole, so that a file that was altered, cut short or made by
// something else is refused before it replaces a cluster's state:
//
//	"HUSHSNAP" [version u8] [header length u32] [header JSON]
//	then chunks: [length u32] [AES-256-GCM of at most snapChunk bytes]
//
// The chunks are sealed under a random key of the file's own, which the
// header carries wrapped by the agent's seal (or, on an agent without one,
// sealed under its keyring). Each chunk's nonce is its number, and its
// additional data the header's SHA-256 and whether it is the last one:
// the STREAM construction, as age and Tink seal streams, so that chunks
// cannot be reordered, dropped, moved between files or cut off at the end.

const (
	snapMagic   = "HUSHSNAP"
	snapVersion = 1
	// snapChunk is how much plaintext one chunk seals.
	snapChunk = 64 << 10
	// snapMaxHeader bounds the header a reader accepts.
	snapMaxHeader = 64 << 10
	// snapKeyringSeal names, in a header, a file key sealed under the
	// keyring instead of wrapped by a seal.
	snapKeyringSeal = "keyring"
)

// snapKeyAAD binds a file key sealed under the keyring to its purpose.
var snapKeyAAD = []byte("hush snapshot key v1")

// Errors of OpenSnapshot and of reading what it returns; check them with
// errors.Is.
var (
	// ErrNotSnapshot is returned for a file that is not a hush snapshot.
	ErrNotSnapshot = errors.New("not a hush snapshot file (it does not begin as `hush operator snapshot save` writes one)")
	// ErrSnapshotAltered is returned for a snapshot that was changed or
	// cut short since it was saved.
	ErrSnapshotAltered = errors.New("the snapshot file was altered or cut short since it was saved: use an intact copy")
)

// SnapshotInfo is what a snapshot file's header says.
type SnapshotInfo struct {
	// CreatedAt is when the snapshot was saved.
	CreatedAt time.Time `json:"created_at"`
	// Index is the applied index of the state it holds.
	Index uint64 `json:"index"`
	// Seal is the kind of seal that wraps its key, or "keyring".
	Seal string `json:"seal"`
}

type snapHeader struct {
	SnapshotInfo
	// Key is the file's key, wrapped by Seal.
	Key []byte `json:"key"`
}

// NewSnapshotWriter returns a writer that seals what is written to it, the
// store's snapshot, into w as a snapshot file; Close seals the last chunk.
// Nothing reaches w before the first chunk is full or Close is called, so
// that a caller can still answer with an error until then.
func (s *Store) NewSnapshotWriter(ctx context.Context, w io.Writer) (io.WriteCloser, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate snapshot key: %w", err)
	}
	h := snapHeader{SnapshotInfo: SnapshotInfo{CreatedAt: time.Now().UTC(), Index: s.AppliedIndex()}}
	var err error
	if s.seal != nil {
		h.Seal = s.seal.Kind()
		h.Key, err = s.seal.Wrap(ctx, key)
	} else {
		h.Seal = snapKeyringSeal
		h.Key, err = s.keyring.Seal(key, snapKeyAAD)
	}
	if err != nil {
		return nil, fmt.Errorf("wrap snapshot key: %w", err)
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot header: %w", err)
	}
	var head bytes.Buffer
	head.WriteString(snapMagic)
	head.WriteByte(snapVersion)
	head.Write(binary.BigEndian.AppendUint32(nil, uint32(len(hj))))
	head.Write(hj)
	aead, err := snapAEAD(key)
	if err != nil {
		return nil, err
	}
	return &snapWriter{w: w, aead: aead, aad: sha256.Sum256(head.Bytes()), head: head.Bytes(), buf: make([]byte, 0, snapChunk)}, nil
}

type snapWriter struct {
	w    io.Writer
	aead cipher.AEAD
	aad  [sha256.Size]byte
	head []byte // written with the first chunk
	buf  []byte
	n    uint64
	err  error
}

func (sw *snapWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 && sw.err == nil {
		if len(sw.buf) == snapChunk {
			sw.err = sw.flush(false)
			continue
		}
		k := copy(sw.buf[len(sw.buf):snapChunk], p)
		sw.buf = sw.buf[:len(sw.buf)+k]
		p, written = p[k:], written+k
	}
	return written, sw.err
}

// Close seals the last chunk, which may be empty.
func (sw *snapWriter) Close() error {
	if sw.err == nil {
		sw.err = sw.flush(true)
		if sw.err == nil {
			sw.err = errors.New("snapshot writer is closed")
			return nil
		}
	}
	return sw.err
}

func (sw *snapWriter) flush(last bool) error {
	out := sw.head
	sw.head = nil
	sealed := sw.aead.Seal(nil, snapNonce(sw.n), sw.buf, snapChunkAAD(sw.aad, last))
	out = binary.BigEndian.AppendUint32(out, uint32(len(sealed)))
	out = append(out, sealed...)
	sw.n++
	sw.buf = sw.buf[:0]
	if _, err := sw.w.Write(out); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// OpenSnapshot reads a snapshot file's header from r and unwraps its key
// with the store's seal (or keyring). It returns what the header says and
// a reader of the store snapshot inside, whose reads fail with
// ErrSnapshotAltered at the first chunk that does not authenticate: read
// it to its end before trusting any of it.
func (s *Store) OpenSnapshot(ctx context.Context, r io.Reader) (*SnapshotInfo, io.Reader, error) {
	br := bufio.NewReader(r)
	pre := make([]byte, len(snapMagic)+1+4)
	if _, err := io.ReadFull(br, pre); err != nil || string(pre[:len(snapMagic)]) != snapMagic {
		return nil, nil, ErrNotSnapshot
	}
	if v := pre[len(snapMagic)]; v != snapVersion {
		return nil, nil, fmt.Errorf("%w: snapshot format %d (saved by a newer hush?); this agent reads format %d", ErrUnknownFormat, v, snapVersion)
	}
	n := binary.BigEndian.Uint32(pre[len(snapMagic)+1:])
	if n > snapMaxHeader {
		return nil, nil, fmt.Errorf("%w: its header is %d bytes", ErrSnapshotAltered, n)
	}
	hj := make([]byte, n)
	if _, err := io.ReadFull(br, hj); err != nil {
		return nil, nil, ErrSnapshotAltered
	}
	var h snapHeader
	if err := json.Unmarshal(hj, &h); err != nil {
		return nil, nil, fmt.Errorf("%w: its header does not parse: %v", ErrSnapshotAltered, err)
	}
	key, err := s.unwrapSnapshotKey(ctx, &h)
	if err != nil {
		return nil, nil, err
	}
	aead, err := snapAEAD(key)
	if err != nil {
		return nil, nil, err
	}
	return &h.SnapshotInfo, &snapReader{r: br, aead: aead, aad: sha256.Sum256(append(pre, hj...))}, nil
}

func (s *Store) unwrapSnapshotKey(ctx context.Context, h *snapHeader) ([]byte, error) {
	var key []byte
	var err error
	switch {
	case h.Seal == snapKeyringSeal && s.seal == nil:
		key, err = s.keyring.Open(h.Key, snapKeyAAD)
		if err != nil {
			return nil, fmt.Errorf("open snapshot key: %w: the snapshot was saved from another cluster, or its key was pruned from the keyring since", err)
		}
	case h.Seal == snapKeyringSeal:
		return nil, fmt.Errorf("the snapshot was saved by an agent without a seal, and this agent has a %q seal: restore it into an agent like the one that saved it", s.seal.Kind())
	case s.seal == nil:
		return nil, fmt.Errorf("the snapshot's key is wrapped by a %q seal, and this agent has none: give the agent the seal the saving cluster had", h.Seal)
	case s.seal.Kind() != h.Seal:
		return nil, fmt.Errorf("the snapshot's key is wrapped by a %q seal, and this agent has a %q seal: restore it into a cluster with the seal that saved it", h.Seal, s.seal.Kind())
	default:
		key, err = s.seal.Unwrap(ctx, h.Key)
		if err != nil {
			return nil, fmt.Errorf("unwrap snapshot key with the %q seal: %w; a snapshot opens only with the seal's key of the cluster that saved it", h.Seal, err)
		}
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: its key is %d bytes", ErrSnapshotAltered, len(key))
	}
	return key, nil
}

type snapReader struct {
	r    *bufio.Reader
	aead cipher.AEAD
	aad  [sha256.Size]byte
	n    uint64
	buf  []byte
	done bool
	err  error
}

func (sr *snapReader) Read(p []byte) (int, error) {
	for len(sr.buf) == 0 {
		if sr.err != nil {
			return 0, sr.err
		}
		if sr.done {
			return 0, io.EOF
		}
		sr.err = sr.next()
	}
	n := copy(p, sr.buf)
	sr.buf = sr.buf[n:]
	return n, nil
}

// next opens the next chunk, which must be the last one when the file ends
// after it.
func (sr *snapReader) next() error {
	var lb [4]byte
	if _, err := io.ReadFull(sr.r, lb[:]); err != nil {
		return cutShort(err, "it ends before its last chunk")
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n > snapChunk+uint32(sr.aead.Overhead()) {
		return fmt.Errorf("%w (chunk %d claims %d bytes)", ErrSnapshotAltered, sr.n, n)
	}
	sealed := make([]byte, n)
	if _, err := io.ReadFull(sr.r, sealed); err != nil {
		return cutShort(err, fmt.Sprintf("it ends inside chunk %d", sr.n))
	}
	nonce := snapNonce(sr.n)
	plain, err := sr.aead.Open(nil, nonce, sealed, snapChunkAAD(sr.aad, false))
	if err != nil {
		plain, err = sr.aead.Open(nil, nonce, sealed, snapChunkAAD(sr.aad, true))
		if err != nil {
			return fmt.Errorf("%w (chunk %d does not authenticate)", ErrSnapshotAltered, sr.n)
		}
		if _, err := sr.r.ReadByte(); err != io.EOF {
			return fmt.Errorf("%w (data follows its last chunk)", ErrSnapshotAltered)
		}
		sr.done = true
	}
	sr.n++
	sr.buf = plain
	return nil
}

// cutShort is the error of a read of the file that failed: the file ends
// too soon, or the read itself failed.
func cutShort(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%s)", ErrSnapshotAltered, what)
	}
	return fmt.Errorf("read snapshot: %w", err)
}

func snapAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("snapshot cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// snapNonce is chunk n's nonce: under a key used for one file only, the
// chunk's number is unique.
func snapNonce(n uint64) []byte {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce[4:], n)
	return nonce
}

func snapChunkAAD(head [sha256.Size]byte, last bool) []byte {
	aad := append([]byte(nil), head[:]...)
	if last {
		return append(aad, 1)
	}
	return append(aad, 0)
}
