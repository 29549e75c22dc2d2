<?php
// Installs WordPress in the release it runs from, as the site's Linux user, without WP-CLI
// (the same code runs under `wp eval-file` where WP-CLI exists). Arguments come from the
// environment, never from a shell string. Prints "installed" or "already installed".
// The first administrator gets a random password nobody knows: logins go through magic links.

$required = ['PRESSLUFT_URL', 'PRESSLUFT_TITLE', 'PRESSLUFT_ADMIN_USER', 'PRESSLUFT_ADMIN_EMAIL', 'PRESSLUFT_RELEASE'];
foreach ($required as $name) {
    if (getenv($name) === false || getenv($name) === '') {
        fwrite(STDERR, "missing $name\n");
        exit(2);
    }
}
$url = getenv('PRESSLUFT_URL');
$_SERVER['HTTP_HOST'] = parse_url($url, PHP_URL_HOST);
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = $_SERVER['HTTP_HOST'];
define('WP_INSTALLING', true);
define('WP_SITEURL', $url);
define('WP_HOME', $url);

// No mail from a command-line install (no MTA on the node, and nobody to notify).
function wp_mail() { return true; }

require getenv('PRESSLUFT_RELEASE') . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

if (is_blog_installed()) {
    echo "already installed\n";
    exit(0);
}
$result = wp_install(
    getenv('PRESSLUFT_TITLE'),
    getenv('PRESSLUFT_ADMIN_USER'),
    getenv('PRESSLUFT_ADMIN_EMAIL'),
    true,
    '',
    wp_generate_password(40, true, true)
);
if (is_wp_error($result) || empty($result['user_id'])) {
    fwrite(STDERR, "install failed\n");
    exit(1);
}
update_option('siteurl', $url);
update_option('home', $url);
echo "installed\n";
