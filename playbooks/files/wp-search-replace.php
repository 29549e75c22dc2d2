<?php
// Managed by Pressluft. Replaces one URL with another in every text column of a site's
// tables, the way WP-CLI's search-replace does: inside serialized PHP values (unserialized,
// replaced, serialized again so string lengths stay right, nested ones included) and in the
// JSON-escaped form (https:\/\/...). Values holding objects of classes that cannot be loaded
// here are left as they were and counted. WordPress is loaded with SHORTINIT: only the
// database layer, no plugin runs. Runs as the site user:
//   PRESSLUFT_RELEASE=<release dir> PRESSLUFT_FROM=<old url> PRESSLUFT_TO=<new url>
//   [PRESSLUFT_NOINDEX=1: also ask search engines not to index the site]
//   [PRESSLUFT_TABLES=t1,t2: only these tables]
// Prints one JSON line: {"tables":N,"rows":N,"skipped":N}.

$release = getenv('PRESSLUFT_RELEASE');
$from = getenv('PRESSLUFT_FROM');
$to = getenv('PRESSLUFT_TO');
if (!$release || !$from || !$to) {
    fwrite(STDERR, "PRESSLUFT_RELEASE, PRESSLUFT_FROM and PRESSLUFT_TO must be set\n");
    exit(2);
}
$_SERVER['HTTP_HOST'] = parse_url($to, PHP_URL_HOST) ?: 'localhost';
define('SHORTINIT', true);
require $release . '/wp-load.php';

$pairs = [$from => $to, str_replace('/', '\\/', $from) => str_replace('/', '\\/', $to)];
$skipped = 0;

/** The value with every pair replaced, through serialized data at any depth. */
function pressluft_replace($value, array $pairs, int &$skipped)
{
    if (is_string($value)) {
        if (preg_match('/^(?:[aOs]:\d+:|[bid]:|N;)/', $value)) {
            $inner = @unserialize($value, ['allowed_classes' => false]);
            if ($inner !== false || $value === 'b:0;') {
                if (pressluft_has_incomplete($inner)) {
                    $skipped++;
                    return $value;
                }
                return serialize(pressluft_replace($inner, $pairs, $skipped));
            }
        }
        return strtr($value, $pairs);
    }
    if (is_array($value)) {
        foreach ($value as $key => $item) {
            $value[$key] = pressluft_replace($item, $pairs, $skipped);
        }
        return $value;
    }
    if ($value instanceof stdClass) {
        foreach (get_object_vars($value) as $key => $item) {
            $value->$key = pressluft_replace($item, $pairs, $skipped);
        }
    }
    return $value;
}

/** Whether a value holds an object whose class is not loaded (it cannot be edited safely). */
function pressluft_has_incomplete($value): bool
{
    if ($value instanceof __PHP_Incomplete_Class) {
        return true;
    }
    if (is_array($value) || $value instanceof stdClass) {
        foreach ((array) $value as $item) {
            if (pressluft_has_incomplete($item)) {
                return true;
            }
        }
    }
    return false;
}

global $wpdb;
$text = '/^(?:var)?char|text|json/i';
$tables = $wpdb->get_col($wpdb->prepare('SHOW TABLES LIKE %s', $wpdb->esc_like($wpdb->prefix) . '%'));
$rows = 0;
// PRESSLUFT_TABLES (comma-separated) limits the rewrite to those tables (a promotion
// rewrites only what it copied).
$only = array_filter(explode(',', (string) getenv('PRESSLUFT_TABLES')));
if ($only) {
    $tables = array_values(array_intersect($tables, $only));
}
foreach ($tables as $table) {
    $columns = $wpdb->get_results("SHOW COLUMNS FROM `$table`");
    $keys = [];
    $texts = [];
    foreach ($columns as $column) {
        if ($column->Key === 'PRI') {
            $keys[] = $column->Field;
        }
        if (preg_match($text, $column->Type)) {
            $texts[] = $column->Field;
        }
    }
    if (!$keys) {
        continue;
    }
    $key_list = implode(', ', array_map(fn ($k) => "`$k`", $keys));
    foreach ($texts as $column) {
        $like = [];
        foreach (array_keys($pairs) as $needle) {
            $like[] = $wpdb->prepare("`$column` LIKE %s", '%' . $wpdb->esc_like($needle) . '%');
        }
        $found = $wpdb->get_results(
            "SELECT $key_list, `$column` AS pressluft_value FROM `$table` WHERE " . implode(' OR ', $like),
            ARRAY_A
        );
        foreach ($found as $row) {
            $new = pressluft_replace($row['pressluft_value'], $pairs, $skipped);
            if ($new === $row['pressluft_value']) {
                continue;
            }
            $where = array_intersect_key($row, array_flip($keys));
            if ($wpdb->update($table, [$column => $new], $where) === false) {
                fwrite(STDERR, "updating $table.$column failed: {$wpdb->last_error}\n");
                exit(1);
            }
            $rows++;
        }
    }
}
if (getenv('PRESSLUFT_NOINDEX') === '1') {
    $wpdb->update($wpdb->options, ['option_value' => '0'], ['option_name' => 'blog_public']);
}
echo json_encode(['tables' => count($tables), 'rows' => $rows, 'skipped' => $skipped]), "\n";
