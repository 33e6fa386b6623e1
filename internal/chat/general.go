package chat

import (
	"context"
	"errors"
	"strings"

	"github.com/mozaiks/mozaiks/internal/store"
)

// General (Ask mode) chats are the free-form conversations ChatUI shows
// behind its robot avatar, one list per app and user. They are stored like
// workflow chats (a session and its events, run by the general workflow's
// agent) and told apart by their id, so no store schema changes and every
// existing route, replay and ownership rule applies to them unchanged.

// GeneralPrefix starts the id of every general chat. Workflow chat ids never
// start with it: the runtime mints "chat_..." ids and a socket may not name
// a general chat in its path.
const GeneralPrefix = "general-"

// IsGeneral reports whether chatID names a general chat.
func IsGeneral(chatID string) bool { return strings.HasPrefix(chatID, GeneralPrefix) }

// GeneralRequest asks for a user's general chat.
type GeneralRequest struct {
	AppID, UserID string
	// Workflow runs new general chats (GENERAL_WORKFLOW); existing ones keep
	// the workflow they were created with.
	Workflow string
	// ChatID is the general chat the client last used; it is taken when it
	// is the user's, else the user's most recent one is.
	ChatID string
	// New starts a fresh general chat (chat.start_general_chat).
	New bool
}

// OpenGeneral returns the user's general chat, creating one when they have
// none (or asked for a new one).
func (m *Manager) OpenGeneral(ctx context.Context, req GeneralRequest) (store.Session, error) {
	if !req.New && IsGeneral(req.ChatID) {
		sess, err := m.Get(ctx, req.AppID, req.ChatID, SameUser(req.UserID))
		if err == nil {
			return sess, nil
		}
		if !errors.Is(err, ErrNotYours) {
			return store.Session{}, err
		}
	}
	if !req.New {
		list, err := m.ListGeneral(ctx, req.AppID, req.UserID, 1, SameUser(req.UserID))
		if err != nil {
			return store.Session{}, err
		}
		if len(list) > 0 {
			return list[0], nil
		}
	}
	// Created like any chat (a UserDriven workflow's greeting is stored now).
	sess, _, err := m.Create(ctx, OpenRequest{ChatID: GeneralPrefix + randomID(12), AppID: req.AppID, UserID: req.UserID,
		Workflow: req.Workflow})
	return sess, err
}

// ListGeneral lists up to limit of the user's general chats, newest first,
// if the caller may see them.
func (m *Manager) ListGeneral(ctx context.Context, appID, userID string, limit int, allow Allow) ([]store.Session, error) {
	return m.list(ctx, store.ListQuery{AppID: appID, UserID: userID}, limit, IsGeneral, allow)
}

// ListWorkflowChats lists up to limit of the user's workflow chats (not
// general ones) of one workflow, or of all when workflow is "", with the
// given status ("" for any), newest first, if the caller may see them.
func (m *Manager) ListWorkflowChats(ctx context.Context, appID, userID, workflow, status string, limit int,
	allow Allow) ([]store.Session, error) {
	q := store.ListQuery{AppID: appID, UserID: userID, Workflow: workflow, Status: status}
	return m.list(ctx, q, limit, func(id string) bool { return !IsGeneral(id) }, allow)
}

// list pages through the store until it has limit sessions that keep
// accepts, or has read maxPages pages (a user with thousands of chats of the
// other kind gets a short list rather than a slow one).
func (m *Manager) list(ctx context.Context, q store.ListQuery, limit int, keep func(string) bool, allow Allow) ([]store.Session, error) {
	const maxPages = 20
	q.Limit = store.MaxListLimit
	var out []store.Session
	for range maxPages {
		page, next, err := m.List(ctx, q, allow)
		if err != nil {
			return nil, err
		}
		for _, s := range page {
			if keep(s.ChatID) {
				out = append(out, s)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	return out, nil
}
