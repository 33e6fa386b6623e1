package chat

import (
	"context"
	"errors"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Allow says whether the caller may read or change a chat that belongs to
// userID. The transport builds it from the request (a verified token, or the
// user the request names when auth is off); a nil Allow refuses everything,
// so a route that forgets to pass one fails closed.
type Allow func(userID string) error

// SameUser allows the chats of one user id: the caller named or proved it.
func SameUser(userID string) Allow {
	return func(owner string) error {
		if owner != userID {
			return ErrNotYours
		}
		return nil
	}
}

func (a Allow) check(owner string) error {
	if a == nil {
		return ErrNotYours
	}
	return a(owner)
}

// Get returns a chat the caller may see; a missing chat and another user's
// chat are both ErrNotYours (or what allow said).
func (m *Manager) Get(ctx context.Context, appID, chatID string, allow Allow) (store.Session, error) {
	sess, err := m.opts.Store.GetSession(ctx, appID, chatID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, ErrNotYours
	}
	if err != nil {
		return store.Session{}, err
	}
	if err := allow.check(sess.UserID); err != nil {
		return store.Session{}, err
	}
	return sess, nil
}

// List pages through one user's chats, if the caller may see them.
func (m *Manager) List(ctx context.Context, q store.ListQuery, allow Allow) ([]store.Session, string, error) {
	if err := allow.check(q.UserID); err != nil {
		return nil, "", err
	}
	return m.opts.Store.ListSessions(ctx, q)
}

// Events calls fn with the chat's stored events after afterSeq, in order,
// until fn returns false; the caller must have been allowed the chat (Get).
func (m *Manager) Events(ctx context.Context, sess store.Session, afterSeq int64, fn func(store.Event) bool) error {
	const batch = 500
	for {
		evs, err := m.opts.Store.ListEvents(ctx, sess.AppID, sess.ChatID, afterSeq, batch)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			afterSeq = ev.Seq
			if !fn(ev) {
				return nil
			}
		}
		if len(evs) < batch {
			return nil
		}
	}
}

// pendingFor finds the chat waiting on id and checks the caller may answer.
func (m *Manager) pendingFor(ctx context.Context, appID, id, kind, chatID string, allow Allow) (store.Session, error) {
	sess, err := m.opts.Store.FindPending(ctx, appID, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (sess.PendingKind != kind || (chatID != "" && sess.ChatID != chatID))) {
		return store.Session{}, ErrNoPending
	}
	if err != nil {
		return store.Session{}, err
	}
	if err := allow.check(sess.UserID); err != nil {
		if errors.Is(err, ErrNotYours) {
			return store.Session{}, ErrNoPending // someone else's request looks like none
		}
		return store.Session{}, err
	}
	return sess, nil
}
