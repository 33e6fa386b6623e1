package serve

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mozaiks/mozaiks/internal/chat"
)

// upload: POST /api/chat/upload, multipart/form-data as ChatUI sends it
// (ChatUI/src/adapters/api.js uploadFile: file, appId, userId, chatId,
// intent, bundle_path; the file part comes first). The file goes into the
// user's chat as a chat.attachment event: the sockets watching the chat see
// it, the transcript lists it, and the model reads it when it is text.
// Larger than MOZAIKS_UPLOAD_MAX_BYTES -> 413; a chat that is not the
// user's -> 404, as for every chat route.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) error {
	limit := s.cfg.UploadMaxBytes
	// The form's other fields and boundaries are small; the file itself is
	// checked against the limit on its own below.
	r.Body = http.MaxBytesReader(w, r.Body, limit+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		return apiErr(http.StatusBadRequest, "INVALID_REQUEST", "want a multipart/form-data body with a file part")
	}
	fields := map[string]string{}
	var file []byte
	var filename string
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return uploadReadErr(err)
		}
		if part.FormName() == "file" && part.FileName() != "" {
			file, err = io.ReadAll(io.LimitReader(part, limit+1))
			if err != nil {
				return uploadReadErr(err)
			}
			if int64(len(file)) > limit {
				return apiErr(http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "file is larger than %d bytes", limit)
			}
			filename = filepath.Base(strings.ReplaceAll(part.FileName(), `\`, "/"))
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, 4<<10))
		if err != nil {
			return uploadReadErr(err)
		}
		fields[part.FormName()] = string(v)
	}
	field := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(fields[n]); v != "" {
				return v
			}
		}
		return ""
	}
	appID := field("appId", "app_id")
	if appID == "" {
		appID = s.cfg.DefaultAppID
	}
	userID, chatID := field("userId", "user_id"), field("chatId", "chat_id")
	if file == nil || userID == "" || chatID == "" {
		return apiErr(http.StatusBadRequest, "MISSING_FIELD", "file, userId and chatId are required")
	}
	if err := checkIDs(map[string]string{"app_id": appID, "user_id": userID, "chat_id": chatID}); err != nil {
		return err
	}
	// The type is sniffed from the bytes, never taken from the client.
	ctype := http.DetectContentType(file)
	text := strings.HasPrefix(ctype, "text/") && utf8.Valid(file)
	id := "att_" + uuid.NewString()
	ev, err := s.chats.Attach(r.Context(), appID, chatID, chat.Attachment{ID: id, Filename: filename, ContentType: ctype,
		Data: file, Text: text, Intent: field("intent")}, s.allow(r, appID, userID))
	if errors.Is(err, chat.ErrNotYours) {
		return apiErr(http.StatusNotFound, "SESSION_NOT_FOUND", "no session %s for app %s", chatID, appID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"success": true, "status": "success", "attachment_id": id, "chat_id": chatID,
		"filename": filename, "content_type": ctype, "size_bytes": len(file), "is_text": text, "seq": ev.Seq})
	return nil
}

func uploadReadErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	if errors.Is(err, multipart.ErrMessageTooLarge) {
		return apiErr(http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "multipart form too large")
	}
	return apiErr(http.StatusBadRequest, "INVALID_REQUEST", "could not read the multipart body: %v", err)
}
