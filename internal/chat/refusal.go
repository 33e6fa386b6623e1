package chat

import (
	"context"
	"errors"

	"github.com/mozaiks/mozaiks/internal/store"
)

// Refusal says why Open answered ErrNotYours, for the server log only: the
// client is told nothing beyond "chat not found".
func (m *Manager) Refusal(ctx context.Context, req OpenRequest) string {
	sess, err := m.opts.Store.GetSession(ctx, req.AppID, req.ChatID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "chat id is taken in another app"
	case err != nil:
		return "could not read the chat: " + err.Error()
	case sess.UserID != req.UserID:
		return "chat belongs to another user"
	case sess.Workflow != req.Workflow:
		return "chat belongs to workflow " + sess.Workflow + ", the socket path names " + req.Workflow
	default:
		return "chat not found"
	}
}
