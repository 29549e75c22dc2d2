<?php
// Prints "installed" when the WordPress of the given release is installed and reachable
// through its database, as the site's Linux user; exits 1 otherwise. Read-only.
$release = getenv('PRESSLUFT_RELEASE');
$url = getenv('PRESSLUFT_URL');
if (!$release || !$url) {
    fwrite(STDERR, "missing PRESSLUFT_RELEASE or PRESSLUFT_URL\n");
    exit(2);
}
$_SERVER['HTTP_HOST'] = parse_url($url, PHP_URL_HOST);
$_SERVER['REQUEST_URI'] = '/';
define('SHORTINIT', true);
require $release . '/wp-load.php';
if (!is_blog_installed()) {
    fwrite(STDERR, "WordPress is not installed\n");
    exit(1);
}
echo "installed\n";
