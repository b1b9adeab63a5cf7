/*
 * dispatch.c: events to messages: recipients, preferences, templates, sealing; opening them again.
 */
