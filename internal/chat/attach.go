package chat

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/mozaiks/mozaiks/internal/store"
)

// KindAttachment is the stored event of a file the user put into a chat
// (type "chat.attachment"). A text file's content is in "text", which the
// engine shows the model as a user message; other files keep their bytes in
// "data_base64" and the model sees only that they were attached.
const KindAttachment = "attachment"

// MaxAttachmentText is how much of a text file the model is shown (about
// 50k tokens); a longer file is stored whole and shown truncated.
const MaxAttachmentText = 200 << 10

// Attachment is one uploaded file.
type Attachment struct {
	ID          string
	Filename    string
	ContentType string // sniffed by the caller
	Data        []byte
	Text        bool // Data is UTF-8 text
	Intent      string
}

// Attach stores a file in a chat the caller may change, listed in its
// transcript (and sent to the sockets watching it) as a chat.attachment event.
func (m *Manager) Attach(ctx context.Context, appID, chatID string, a Attachment, allow Allow) (store.Event, error) {
	if m.closing.Load() {
		return store.Event{}, ErrClosing
	}
	if _, err := m.Get(ctx, appID, chatID, allow); err != nil {
		return store.Event{}, err
	}
	if a.ID == "" {
		a.ID = "att_" + randomID(8)
	}
	if a.Filename == "" {
		return store.Event{}, errors.New("attachment has no file name")
	}
	data := map[string]any{"kind": KindAttachment, "agent": "user", "role": "user", "attachment_id": a.ID,
		"filename": a.Filename, "content_type": a.ContentType, "size_bytes": len(a.Data), "is_text": a.Text,
		"content": "📎 " + a.Filename}
	if a.Intent != "" {
		data["intent"] = a.Intent
	}
	switch {
	case a.Text && len(a.Data) <= MaxAttachmentText:
		data["text"] = string(a.Data)
	case a.Text:
		// The model gets the beginning; the whole file stays stored.
		cut := MaxAttachmentText
		for cut > 0 && !utf8.RuneStart(a.Data[cut]) {
			cut--
		}
		data["text"] = string(a.Data[:cut]) + fmt.Sprintf("\n[truncated: the file has %d bytes]", len(a.Data))
		data["data_base64"] = base64.StdEncoding.EncodeToString(a.Data)
	default:
		data["data_base64"] = base64.StdEncoding.EncodeToString(a.Data)
	}
	// Stored in order with the chat's other events (and added to the cached
	// transcript the next run reads); the caller's answer waits for the store.
	o := newOp()
	o.typ, o.agent, o.data, o.unfenced = "chat."+KindAttachment, "user", data, true
	r := m.lockRoom(appID, chatID)
	m.postLocked(r, o)
	r.mu.Unlock()
	return o.wait(ctx)
}
