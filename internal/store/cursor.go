package store

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrBadCursor: the cursor was not made by EncodeCursor.
var ErrBadCursor = errors.New("invalid cursor")

// EncodeCursor makes the opaque cursor after the session (createdAt, chatID)
// in newest-first order.
func EncodeCursor(createdAt time.Time, chatID string) string {
	raw := strconv.FormatInt(createdAt.UnixMilli(), 10) + "|" + chatID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor reverses EncodeCursor.
func DecodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ms, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return time.Time{}, "", ErrBadCursor
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMilli(n).UTC(), id, nil
}

// Now is the store's clock: UTC, millisecond precision, as MongoDB keeps it,
// so both backends return identical timestamps.
func Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
