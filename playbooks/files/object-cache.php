<?php
/*
 * Pressluft object cache (a WordPress drop-in, shipped in every release): WordPress's object
 * cache kept in the node's Redis through phpredis, every key under this environment's prefix
 * (WP_REDIS_PREFIX, the environment's Linux user), so environments never read or flush each
 * other's entries. Active only when the environment's wp-config.php defines
 * PRESSLUFT_OBJECT_CACHE as true (env_cache_toggle); otherwise this file defines nothing and
 * WordPress uses its own per-request cache. When Redis does not answer, the request carries on
 * with a per-request cache.
 */

// Declared inside the condition on purpose: PHP binds top-level functions when it compiles the
// file, so an early `return` would still leave wp_cache_init() defined and WordPress would take
// the drop-in as active.
if (defined('PRESSLUFT_OBJECT_CACHE') && PRESSLUFT_OBJECT_CACHE && class_exists('Redis')) {
    class Pressluft_Object_Cache
    {
        /** @var Redis|null */
        private $redis = null;
        private $prefix;
        private $blog_prefix = '';
        private $local = [];
        private $global_groups = [];
        private $non_persistent_groups = [];
        public $cache_hits = 0;
        public $cache_misses = 0;

        public function __construct()
        {
            $this->prefix = defined('WP_REDIS_PREFIX') ? WP_REDIS_PREFIX : 'wp:';
            $this->blog_prefix = function_exists('is_multisite') && is_multisite() ? get_current_blog_id() . ':' : '';
            try {
                $redis = new Redis();
                if ($redis->connect('127.0.0.1', 6379, 1.0)
                    && defined('PRESSLUFT_REDIS_USER') && defined('PRESSLUFT_REDIS_PASSWORD')
                    && $redis->auth([PRESSLUFT_REDIS_USER, PRESSLUFT_REDIS_PASSWORD])) {
                    $redis->setOption(Redis::OPT_SERIALIZER, Redis::SERIALIZER_PHP);
                    $this->redis = $redis;
                }
            } catch (Exception $e) {
                $this->redis = null;
            }
        }

        private function key($key, $group)
        {
            $group = $group === '' ? 'default' : $group;
            $blog = isset($this->global_groups[$group]) ? '' : $this->blog_prefix;
            return $this->prefix . $blog . $group . ':' . $key;
        }

        private function persistent($group)
        {
            return $this->redis !== null && !isset($this->non_persistent_groups[$group === '' ? 'default' : $group]);
        }

        /** Runs a Redis call; a failing Redis is dropped for the rest of the request. */
        private function call(callable $call, $fallback)
        {
            try {
                return $call($this->redis);
            } catch (Exception $e) {
                $this->redis = null;
                return $fallback;
            }
        }

        private static function copy($value)
        {
            return is_object($value) ? clone $value : $value;
        }

        public function get($key, $group = 'default', $force = false, &$found = null)
        {
            $k = $this->key($key, $group);
            if (!$force && array_key_exists($k, $this->local)) {
                $found = true;
                $this->cache_hits++;
                return self::copy($this->local[$k]);
            }
            if ($this->persistent($group)) {
                // Values are stored wrapped, so a cached `false` is told apart from a miss.
                $stored = $this->call(function ($r) use ($k) { return $r->get($k); }, false);
                if (is_array($stored) && array_key_exists('v', $stored)) {
                    $found = true;
                    $this->cache_hits++;
                    $this->local[$k] = $stored['v'];
                    return self::copy($stored['v']);
                }
            }
            $found = false;
            $this->cache_misses++;
            return false;
        }

        /** $mode: null (always), 'nx' (only if absent) or 'xx' (only if present). */
        private function store($key, $data, $group, $expire, $mode)
        {
            $k = $this->key($key, $group);
            $data = self::copy($data);
            if (!$this->persistent($group)) {
                $exists = array_key_exists($k, $this->local);
                if (($mode === 'nx' && $exists) || ($mode === 'xx' && !$exists)) {
                    return false;
                }
                $this->local[$k] = $data;
                return true;
            }
            if ($mode === 'nx' && array_key_exists($k, $this->local)) {
                return false;
            }
            $options = [];
            if ($mode !== null) {
                $options[] = $mode;
            }
            if ((int) $expire > 0) {
                $options['ex'] = (int) $expire;
            }
            $index = $this->index();
            $done = $this->call(function ($r) use ($k, $data, $options, $index) {
                // The key joins the environment's index in the same round trip: flush() finds
                // its keys there (the environment's Redis user may not SCAN, which would list
                // every environment's key names).
                $replies = $r->multi(Redis::PIPELINE)
                    ->set($k, ['v' => $data], $options ?: null)
                    ->sAdd($index, $k)
                    ->exec();
                return is_array($replies) ? $replies[0] : false;
            }, null);
            if ($done === null) {
                $this->local[$k] = $data; // Redis went away: this request still sees the value.
                return true;
            }
            if ($done) {
                $this->local[$k] = $data;
            }
            return (bool) $done;
        }

        public function set($key, $data, $group = 'default', $expire = 0)
        {
            return $this->store($key, $data, $group, $expire, null);
        }

        public function add($key, $data, $group = 'default', $expire = 0)
        {
            if (function_exists('wp_suspend_cache_addition') && wp_suspend_cache_addition()) {
                return false;
            }
            return $this->store($key, $data, $group, $expire, 'nx');
        }

        public function replace($key, $data, $group = 'default', $expire = 0)
        {
            return $this->store($key, $data, $group, $expire, 'xx');
        }

        public function delete($key, $group = 'default')
        {
            $k = $this->key($key, $group);
            $had = array_key_exists($k, $this->local);
            unset($this->local[$k]);
            if (!$this->persistent($group)) {
                return $had;
            }
            return (bool) $this->call(function ($r) use ($k) { return $r->del($k); }, $had);
        }

        private function step($key, $offset, $group)
        {
            $value = $this->get($key, $group, false, $found);
            if (!$found) {
                return false;
            }
            $value = max(0, (is_numeric($value) ? (int) $value : 0) + (int) $offset);
            $this->set($key, $value, $group);
            return $value;
        }

        public function incr($key, $offset = 1, $group = 'default')
        {
            return $this->step($key, $offset, $group);
        }

        public function decr($key, $offset = 1, $group = 'default')
        {
            return $this->step($key, -$offset, $group);
        }

        /** The set of every key this environment stored (under its own prefix). */
        private function index()
        {
            return $this->prefix . '{pressluft-index}';
        }

        /**
         * Deletes this environment's keys only (never the whole Redis database): the index is
         * renamed first, so keys stored meanwhile start a new one and are not lost track of.
         */
        public function flush()
        {
            $this->local = [];
            if ($this->redis === null) {
                return true;
            }
            $index = $this->index();
            $flushing = $index . ':' . bin2hex(random_bytes(8));
            return (bool) $this->call(function ($r) use ($index, $flushing) {
                if (!$r->exists($index) || !$r->rename($index, $flushing)) {
                    return true;
                }
                $keys = $r->sMembers($flushing);
                foreach (array_chunk($keys ?: [], 500) as $chunk) {
                    $r->unlink($chunk);
                }
                $r->unlink($flushing);
                return true;
            }, false);
        }

        public function flush_runtime()
        {
            $this->local = [];
            return true;
        }

        public function add_global_groups($groups)
        {
            foreach ((array) $groups as $group) {
                $this->global_groups[$group] = true;
            }
        }

        public function add_non_persistent_groups($groups)
        {
            foreach ((array) $groups as $group) {
                $this->non_persistent_groups[$group] = true;
            }
        }

        public function switch_to_blog($blog_id)
        {
            $this->blog_prefix = function_exists('is_multisite') && is_multisite() ? (int) $blog_id . ':' : '';
        }

        public function close()
        {
            return true;
        }
    }

    function wp_cache_init()
    {
        $GLOBALS['wp_object_cache'] = new Pressluft_Object_Cache();
    }

    function wp_cache_add($key, $data, $group = '', $expire = 0)
    {
        return $GLOBALS['wp_object_cache']->add($key, $data, $group, $expire);
    }

    function wp_cache_replace($key, $data, $group = '', $expire = 0)
    {
        return $GLOBALS['wp_object_cache']->replace($key, $data, $group, $expire);
    }

    function wp_cache_set($key, $data, $group = '', $expire = 0)
    {
        return $GLOBALS['wp_object_cache']->set($key, $data, $group, $expire);
    }

    function wp_cache_get($key, $group = '', $force = false, &$found = null)
    {
        return $GLOBALS['wp_object_cache']->get($key, $group, $force, $found);
    }

    function wp_cache_delete($key, $group = '')
    {
        return $GLOBALS['wp_object_cache']->delete($key, $group);
    }

    function wp_cache_incr($key, $offset = 1, $group = '')
    {
        return $GLOBALS['wp_object_cache']->incr($key, $offset, $group);
    }

    function wp_cache_decr($key, $offset = 1, $group = '')
    {
        return $GLOBALS['wp_object_cache']->decr($key, $offset, $group);
    }

    function wp_cache_flush()
    {
        return $GLOBALS['wp_object_cache']->flush();
    }

    function wp_cache_flush_runtime()
    {
        return $GLOBALS['wp_object_cache']->flush_runtime();
    }

    function wp_cache_close()
    {
        return $GLOBALS['wp_object_cache']->close();
    }

    function wp_cache_add_global_groups($groups)
    {
        $GLOBALS['wp_object_cache']->add_global_groups($groups);
    }

    function wp_cache_add_non_persistent_groups($groups)
    {
        $GLOBALS['wp_object_cache']->add_non_persistent_groups($groups);
    }

    function wp_cache_switch_to_blog($blog_id)
    {
        $GLOBALS['wp_object_cache']->switch_to_blog($blog_id);
    }

    function wp_cache_reset()
    {
        $GLOBALS['wp_object_cache']->flush_runtime();
    }
}
