// Package archtest holds no code: its test fails when a package imports
// across the intended direction of the house (style.md):
//
//	cli -> {serve, install, doctor, app} -> {chat, engine, store, llm, config, auth, workflow}
//
// nothing imports cli, the lower layer never imports the upper ones, serve
// never imports install, and neither store/* nor workflow imports config.
package archtest
