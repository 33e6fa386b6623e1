package sqlite

import (
	"context"
	"fmt"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Writes go through one goroutine that commits whatever is waiting as one
// transaction (group commit), each write inside its own savepoint so one
// failing write does not undo the others. SQLite has a single writer anyway;
// batching turns a hundred concurrent appends into a few commits instead of
// a hundred queued ones.

type writeOp struct {
	ctx  context.Context
	fn   func(wtx) error
	done chan error
}

// maxBatch bounds how many writes share a transaction.
const maxBatch = 128

// write runs fn in the writer's transaction and returns its error. Once the
// writer has taken the write it waits for the outcome even if ctx ends, so a
// caller never reports as failed a write that was committed.
func (s *Store) write(ctx context.Context, fn func(wtx) error) error {
	op := writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return fmt.Errorf("%w: store closed", store.ErrUnavailable)
	}
	return <-op.done
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]writeOp, 0, maxBatch)
	for {
		select {
		case <-s.quit:
			return
		case op := <-s.ops:
			batch = append(batch[:0], op)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []writeOp) {
	s.commits.Add(1)
	errs := make([]error, len(batch))
	finish := func() {
		for i, op := range batch {
			op.done <- errs[i]
		}
	}
	defer finish()
	sqltx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		for i := range errs {
			errs[i] = wrap(err)
		}
		return
	}
	s.bound = s.bound[:0]
	tx := wtx{Tx: sqltx, s: s, bound: &s.bound}
	single := len(batch) == 1
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if single {
			errs[i] = op.fn(tx)
			continue
		}
		if _, err := tx.ExecContext(context.Background(), qSavepoint); err != nil {
			errs[i] = wrap(err)
			continue
		}
		if errs[i] = op.fn(tx); errs[i] != nil {
			_, _ = tx.ExecContext(context.Background(), qRollbackTo)
		}
		_, _ = tx.ExecContext(context.Background(), qRelease)
	}
	if single && errs[0] != nil {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = wrap(err)
			}
		}
	}
}
