<?php
/*
 * Plugin Name: Pressluft login
 * Description: Consumes the one-time login links the Pressluft control plane creates (magic login).
 * Version: 1
 */
// A link carries a random token; only its SHA-256 is stored, as an option with the user and an
// expiry. Deleting that option is the claim: of two concurrent visits only one deletes the
// row, so a link logs in once. An expired, spent or unknown token is refused.

if (!defined('ABSPATH')) {
    exit;
}

add_action('init', function () {
    if (!isset($_GET['pressluft_login'])) {
        return;
    }
    nocache_headers();
    $token = (string) wp_unslash($_GET['pressluft_login']);
    if (!preg_match('/^[0-9a-f]{64}$/', $token)) {
        wp_die('This login link is not valid.', 'Login link refused', ['response' => 403]);
    }
    global $wpdb;
    $name = 'pressluft_login_' . hash('sha256', $token);
    $value = $wpdb->get_var($wpdb->prepare("SELECT option_value FROM {$wpdb->options} WHERE option_name = %s", $name));
    $claimed = $value !== null && $wpdb->delete($wpdb->options, ['option_name' => $name]) === 1;
    $grant = $claimed ? json_decode($value, true) : null;
    if (!is_array($grant) || ($grant['expires'] ?? 0) < time() || !get_userdata((int) ($grant['user'] ?? 0))) {
        wp_die('This login link has expired or was already used.', 'Login link refused', ['response' => 403]);
    }
    wp_set_current_user((int) $grant['user']);
    wp_set_auth_cookie((int) $grant['user'], false, is_ssl());
    wp_safe_redirect(admin_url());
    exit;
}, 1);
