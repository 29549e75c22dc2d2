<?php
// pressluft-query.php: the read-only node queries of one environment, run by the control plane
// over SSH as the environment's Linux user (one command, no job), and the software inventory
// env_update uses. Prints one JSON object. WordPress is booted with SHORTINIT (database only:
// no plugins or themes run), so a broken plugin cannot break a query. Where WP-CLI exists the
// same file runs under `wp eval-file` (WordPress already loaded, arguments in $args).
//
//   inventory RELEASE          core version, plugins and themes read from the files
//   wp-info ROOT               the same for ROOT/current, with active flags from the database
//   disk ROOT                  bytes of releases, uploads and the database; free bytes on /var/www
//   magic-login ROOT URL TTL   a one-time login token for the first administrator, valid TTL
//                              seconds, stored only as its SHA-256 (the release's must-use plugin
//                              pressluft-login.php consumes it once)

const PRESSLUFT_HEADER_BYTES = 8192;

function pressluft_fail(string $message, int $code = 1): never
{
    fwrite(STDERR, $message . "\n");
    exit($code);
}

function pressluft_header(string $path, string $field): string
{
    $text = @file_get_contents($path, false, null, 0, PRESSLUFT_HEADER_BYTES);
    if ($text === false) {
        return '';
    }
    $pattern = '/^[ \t\/*#@]*' . preg_quote($field, '/') . ':(.*)$/mi';
    if (!preg_match($pattern, $text, $m)) {
        return '';
    }
    return trim(preg_replace('/\s*(?:\*\/|\?>).*/', '', $m[1]));
}

function pressluft_core_version(string $release): string
{
    $text = @file_get_contents($release . '/wp-includes/version.php');
    return ($text !== false && preg_match('/^\$wp_version\s*=\s*\'([^\']+)\'/m', $text, $m)) ? $m[1] : '';
}

/** Plugins as WordPress lists them: "dir/main.php" or "single.php" => [slug, name, version]. */
function pressluft_plugins(string $release): array
{
    $base = $release . '/wp-content/plugins';
    $found = [];
    foreach (@scandir($base) ?: [] as $entry) {
        if ($entry[0] === '.') {
            continue;
        }
        $path = "$base/$entry";
        if (is_dir($path) && !is_link($path)) {
            foreach (@scandir($path) ?: [] as $file) {
                if (substr($file, -4) === '.php' && is_file("$path/$file")) {
                    $name = pressluft_header("$path/$file", 'Plugin Name');
                    if ($name !== '') {
                        $found["$entry/$file"] = ['slug' => $entry, 'name' => $name, 'version' => pressluft_header("$path/$file", 'Version')];
                        break;
                    }
                }
            }
        } elseif (substr($entry, -4) === '.php' && is_file($path)) {
            $name = pressluft_header($path, 'Plugin Name');
            if ($name !== '') {
                $found[$entry] = ['slug' => substr($entry, 0, -4), 'name' => $name, 'version' => pressluft_header($path, 'Version')];
            }
        }
    }
    return $found;
}

function pressluft_themes(string $release): array
{
    $base = $release . '/wp-content/themes';
    $found = [];
    foreach (@scandir($base) ?: [] as $entry) {
        $style = "$base/$entry/style.css";
        if ($entry[0] === '.' || !is_file($style)) {
            continue;
        }
        $name = pressluft_header($style, 'Theme Name');
        if ($name !== '') {
            $found[$entry] = ['slug' => $entry, 'name' => $name, 'version' => pressluft_header($style, 'Version')];
        }
    }
    return $found;
}

function pressluft_inventory(string $release): array
{
    return [
        'core' => pressluft_core_version($release),
        'plugins' => array_values(pressluft_plugins($release)),
        'themes' => array_values(pressluft_themes($release)),
    ];
}

/** Boots WordPress (database only) from ROOT/current unless WP-CLI has loaded it already. */
function pressluft_boot(string $root): void
{
    if (defined('ABSPATH')) {
        return;
    }
    $_SERVER['HTTP_HOST'] = $_SERVER['HTTP_HOST'] ?? 'localhost';
    $_SERVER['REQUEST_URI'] = '/';
    define('SHORTINIT', true);
    require $root . '/current/wp-load.php';
}

function pressluft_option(string $name)
{
    global $wpdb;
    $value = $wpdb->get_var($wpdb->prepare("SELECT option_value FROM {$wpdb->options} WHERE option_name = %s", $name));
    if (!is_string($value)) {
        return null;
    }
    $data = @unserialize($value, ['allowed_classes' => false]);
    return ($data === false && $value !== 'b:0;') ? $value : $data;
}

function pressluft_wp_info(string $root): array
{
    pressluft_boot($root);
    $release = realpath($root . '/current');
    $active = (array) (pressluft_option('active_plugins') ?: []);
    $plugins = [];
    foreach (pressluft_plugins($release) as $file => $plugin) {
        $plugins[] = $plugin + ['active' => in_array($file, $active, true)];
    }
    $stylesheet = (string) pressluft_option('stylesheet');
    $template = (string) pressluft_option('template');
    $themes = [];
    foreach (pressluft_themes($release) as $slug => $theme) {
        $themes[] = $theme + ['active' => $slug === $stylesheet || $slug === $template];
    }
    return [
        'core' => pressluft_core_version($release),
        'plugins' => $plugins,
        'themes' => $themes,
        'method' => defined('WP_CLI') ? 'wp-cli' : 'php',
    ];
}

function pressluft_dir_bytes(string $dir): int
{
    $total = 0;
    $items = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS),
        RecursiveIteratorIterator::SELF_FIRST
    );
    foreach ($items as $item) {
        if (!$item->isLink()) {
            $total += $item->getSize();
        }
    }
    return $total;
}

function pressluft_disk(string $root): array
{
    pressluft_boot($root);
    global $wpdb;
    $db = (int) $wpdb->get_var('SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = DATABASE()');
    $releases = pressluft_dir_bytes($root . '/releases');
    $uploads = pressluft_dir_bytes($root . '/shared/uploads');
    return [
        'releases_bytes' => $releases,
        'uploads_bytes' => $uploads,
        'database_bytes' => $db,
        'total_bytes' => $releases + $uploads + $db,
        'node_free_bytes' => (int) disk_free_space($root),
    ];
}

function pressluft_magic_login(string $root, string $url, int $ttl): array
{
    pressluft_boot($root);
    global $wpdb;
    if (!is_file($root . '/current/wp-content/mu-plugins/pressluft-login.php')) {
        pressluft_fail('the live release has no pressluft-login must-use plugin: deploy a new release');
    }
    $capabilities = $wpdb->get_blog_prefix() . 'capabilities';
    $admin = $wpdb->get_row($wpdb->prepare(
        "SELECT u.ID, u.user_login FROM {$wpdb->users} u JOIN {$wpdb->usermeta} m ON m.user_id = u.ID
         WHERE m.meta_key = %s AND m.meta_value LIKE %s ORDER BY u.ID LIMIT 1",
        $capabilities,
        '%' . $wpdb->esc_like('"administrator"') . '%'
    ));
    if (!$admin) {
        pressluft_fail('the site has no administrator to log in as');
    }
    // Spent and expired tokens go; the new one is stored only as its hash.
    $now = time();
    foreach ($wpdb->get_results("SELECT option_name, option_value FROM {$wpdb->options} WHERE option_name LIKE 'pressluft\\_login\\_%'") as $row) {
        $old = json_decode($row->option_value, true);
        if (!is_array($old) || ($old['expires'] ?? 0) < $now) {
            $wpdb->delete($wpdb->options, ['option_name' => $row->option_name]);
        }
    }
    $token = bin2hex(random_bytes(32));
    $expires = $now + $ttl;
    $stored = $wpdb->insert($wpdb->options, [
        'option_name' => 'pressluft_login_' . hash('sha256', $token),
        'option_value' => json_encode(['user' => (int) $admin->ID, 'expires' => $expires]),
        'autoload' => 'no',
    ]);
    if ($stored !== 1) {
        pressluft_fail('storing the login token failed');
    }
    return [
        'url' => rtrim($url, '/') . '/?pressluft_login=' . $token,
        'user_login' => $admin->user_login,
        'expires' => $expires,
    ];
}

$pressluft_argv = isset($args) && is_array($args) ? $args : array_slice($argv, 1);
$pressluft_command = $pressluft_argv[0] ?? '';
switch ($pressluft_command) {
    case 'inventory':
        $result = pressluft_inventory($pressluft_argv[1] ?? pressluft_fail('usage: inventory RELEASE', 2));
        break;
    case 'wp-info':
        $result = pressluft_wp_info($pressluft_argv[1] ?? pressluft_fail('usage: wp-info ROOT', 2));
        break;
    case 'disk':
        $result = pressluft_disk($pressluft_argv[1] ?? pressluft_fail('usage: disk ROOT', 2));
        break;
    case 'magic-login':
        if (count($pressluft_argv) !== 4 || !ctype_digit($pressluft_argv[3])) {
            pressluft_fail('usage: magic-login ROOT URL TTL', 2);
        }
        $result = pressluft_magic_login($pressluft_argv[1], $pressluft_argv[2], (int) $pressluft_argv[3]);
        break;
    default:
        pressluft_fail("unknown query '$pressluft_command'", 2);
}
echo json_encode($result, JSON_UNESCAPED_SLASHES), "\n";
