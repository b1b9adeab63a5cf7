/*
 * templates_default.c: the built-in templates of every kind, channel and language.
 */
