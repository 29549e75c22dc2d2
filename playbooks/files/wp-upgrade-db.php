<?php
// Brings the database of the release it runs against up to that release's WordPress (what
// `wp core update-db` and wp-admin/upgrade.php do), as the site's Linux user, without WP-CLI
// (the same code runs under `wp eval-file`). Prints "database upgraded from A to B" or
// "database already current (B)". Plugins are not loaded while it runs.
$release = getenv('PRESSLUFT_RELEASE');
$url = getenv('PRESSLUFT_URL');
if (!$release || !$url) {
    fwrite(STDERR, "missing PRESSLUFT_RELEASE or PRESSLUFT_URL\n");
    exit(2);
}
$_SERVER['HTTP_HOST'] = parse_url($url, PHP_URL_HOST);
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = $_SERVER['HTTP_HOST'];
define('WP_INSTALLING', true);

// No mail from a command-line upgrade (no MTA on the node, and nobody to notify).
function wp_mail() { return true; }

require $release . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

global $wp_db_version;
$before = (int) get_option('db_version');
if ($before === (int) $wp_db_version) {
    echo "database already current ($wp_db_version)\n";
    exit(0);
}
wp_upgrade();
wp_cache_flush();
$after = (int) get_option('db_version');
if ($after !== (int) $wp_db_version) {
    fwrite(STDERR, "the database upgrade stopped at $after, $wp_db_version was expected\n");
    exit(1);
}
echo "database upgraded from $before to $after\n";
