/*
 * webhook.c: webhooks: Standard Webhooks signatures and the HTTP POST of a delivery.
 */
