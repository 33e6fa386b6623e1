// Command fakellm serves internal/llm/llmtest's OpenAI-compatible fake on
// :8000, for tests that run an LLM endpoint as a compose service (only
// reachable by its service name inside the compose network). FAKE_KEY is
// the API key it accepts.
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/mozaiks/mozaiks/internal/llm/llmtest"
)

func main() {
	h := llmtest.NewHandler(llmtest.WithAPIKey(os.Getenv("FAKE_KEY")), llmtest.WithModels("gpt-4o-mini", "gpt-4o"))
	log.Fatal(http.ListenAndServe(":8000", h))
}
