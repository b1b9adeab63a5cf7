/*
 * config.c: the channels' configuration file (SMTP, SMS gateway, webhooks, retries).
 */
