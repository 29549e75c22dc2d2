//! A list the dashboard shows: items, a filter (`/`), a sort order (`s`) and a selection that
//! follows its item through reloads, filtering and sorting.

use pressluft_client::labels::label;
use pressluft_proto::v1::{
    AuditEvent, Job, JobStatus, JobType, Node, NodeStatus, Site, SiteStatus,
};

/// Jobs kept in memory; older ones drop off the end.
pub const MAX_JOBS: usize = 500;

/// Whether a list has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadState {
    /// A request is in flight.
    Loading,
    /// The last request succeeded.
    Loaded,
    /// The last request failed, with the error.
    Failed(String),
}

/// Items with a stable id, searchable text and sort keys.
pub trait Item {
    /// The id.
    fn key(&self) -> String;
    /// What `/` searches (lowercase match).
    fn haystack(&self) -> String;
    /// The sort orders `s` cycles through, by name.
    const SORTS: &'static [&'static str];
    /// The key of sort order `index` (ascending).
    fn sort_key(&self, index: usize) -> String;
}

impl Item for Node {
    fn key(&self) -> String {
        self.id.clone()
    }
    fn haystack(&self) -> String {
        format!(
            "{} {} {} {}",
            self.name,
            self.hostname,
            label::<NodeStatus>(self.status),
            self.php_versions.join(" ")
        )
    }
    const SORTS: &'static [&'static str] = &["name", "status"];
    fn sort_key(&self, index: usize) -> String {
        match index {
            1 => format!("{}\0{}", label::<NodeStatus>(self.status), self.name),
            _ => self.name.clone(),
        }
    }
}

impl Item for Site {
    fn key(&self) -> String {
        self.id.clone()
    }
    fn haystack(&self) -> String {
        let envs: Vec<&str> = self
            .environments
            .iter()
            .flat_map(|e| [e.name.as_str(), e.url.as_str()])
            .collect();
        format!(
            "{} {} {} {}",
            self.slug,
            self.name,
            label::<SiteStatus>(self.status),
            envs.join(" ")
        )
    }
    const SORTS: &'static [&'static str] = &["slug", "status", "newest"];
    fn sort_key(&self, index: usize) -> String {
        match index {
            1 => format!("{}\0{}", label::<SiteStatus>(self.status), self.slug),
            2 => newest_first(self.create_time.as_ref()),
            _ => self.slug.clone(),
        }
    }
}

impl Item for Job {
    fn key(&self) -> String {
        self.id.clone()
    }
    fn haystack(&self) -> String {
        format!(
            "{} {} {} {}",
            self.id,
            label::<JobType>(self.r#type),
            label::<JobStatus>(self.status),
            self.summary
        )
    }
    const SORTS: &'static [&'static str] = &["newest", "status", "type"];
    fn sort_key(&self, index: usize) -> String {
        let newest = newest_first(self.create_time.as_ref());
        match index {
            1 => format!("{}\0{newest}", label::<JobStatus>(self.status)),
            2 => format!("{}\0{newest}", label::<JobType>(self.r#type)),
            _ => newest,
        }
    }
}

impl Item for AuditEvent {
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn haystack(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.actor, self.action, self.resource_type, self.resource_id, self.detail
        )
    }
    const SORTS: &'static [&'static str] = &["newest"];
    fn sort_key(&self, _: usize) -> String {
        newest_first(self.time.as_ref())
    }
}

/// A key that sorts newer timestamps first.
fn newest_first(time: Option<&prost_types::Timestamp>) -> String {
    let (seconds, nanos) = time.map_or((0, 0), |t| (t.seconds, t.nanos));
    format!(
        "{:020}{:010}",
        i64::MAX - seconds.max(0),
        i32::MAX - nanos.max(0)
    )
}

/// One list with its filter, sort order, selection and load state.
#[derive(Debug, Clone, PartialEq)]
pub struct List<T> {
    /// Every item, as loaded.
    pub items: Vec<T>,
    /// Indexes into `items` of what is shown, in display order.
    pub visible: Vec<usize>,
    /// Position in `visible` of the selected row.
    pub selected: usize,
    /// Whether the items are current.
    pub state: LoadState,
    /// The `/` filter (empty: everything).
    pub filter: String,
    /// Index into `T::SORTS`.
    pub sort: usize,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            items: Vec::new(),
            visible: Vec::new(),
            selected: 0,
            state: LoadState::Loading,
            filter: String::new(),
            sort: 0,
        }
    }
}

impl<T: Item + Clone> List<T> {
    /// The selected item.
    pub fn selected_item(&self) -> Option<&T> {
        self.visible
            .get(self.selected)
            .and_then(|&i| self.items.get(i))
    }

    /// The shown items, in order.
    pub fn shown(&self) -> impl Iterator<Item = &T> {
        self.visible.iter().filter_map(|&i| self.items.get(i))
    }

    /// Replaces the items, keeping the same item selected when it is still there.
    pub fn replace(&mut self, items: Vec<T>) {
        self.items = items;
        self.refresh();
    }

    /// Applies a load result; a failure keeps the old items and shows the error.
    pub fn apply(&mut self, result: Result<Vec<T>, String>) {
        match result {
            Ok(items) => {
                self.replace(items);
                self.state = LoadState::Loaded;
            }
            Err(error) => self.state = LoadState::Failed(error),
        }
    }

    /// Sets the filter.
    pub fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        self.refresh();
    }

    /// Moves to the next sort order.
    pub fn next_sort(&mut self) {
        self.sort = (self.sort + 1) % T::SORTS.len();
        self.refresh();
    }

    /// The name of the current sort order.
    pub fn sort_name(&self) -> &'static str {
        T::SORTS.get(self.sort).copied().unwrap_or("")
    }

    /// Moves the selection.
    pub fn move_selection(&mut self, movement: Move) {
        let last = self.visible.len().saturating_sub(1);
        self.selected = match movement {
            Move::Up => self.selected.saturating_sub(1),
            Move::Down => (self.selected + 1).min(last),
            Move::PageUp => self.selected.saturating_sub(10),
            Move::PageDown => (self.selected + 10).min(last),
            Move::Top => 0,
            Move::Bottom => last,
        };
    }

    /// Recomputes what is shown after items, filter or sort changed; the selected item stays
    /// selected when it is still shown.
    pub fn refresh(&mut self) {
        let keep = self.selected_item().map(Item::key);
        let needle = self.filter.to_lowercase();
        let mut visible: Vec<usize> = (0..self.items.len())
            .filter(|&i| {
                needle.is_empty() || self.items[i].haystack().to_lowercase().contains(&needle)
            })
            .collect();
        let sort = self.sort;
        visible.sort_by_cached_key(|&i| self.items[i].sort_key(sort));
        self.visible = visible;
        if let Some(key) = keep
            && let Some(position) = self
                .visible
                .iter()
                .position(|&i| self.items[i].key() == key)
        {
            self.selected = position;
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }
}

/// Selection movements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
}

/// Sort key for "newest first" merges.
fn created(job: &Job) -> (i64, i32) {
    job.create_time
        .map_or((0, 0), |time| (time.seconds, time.nanos))
}

/// Inserts or updates a job from the stream, never replacing a newer version with an older
/// one; the selected job stays selected.
pub fn upsert_job(jobs: &mut List<Job>, job: Job) {
    if let Some(existing) = jobs.items.iter_mut().find(|j| j.id == job.id) {
        if job.version >= existing.version {
            *existing = job;
        }
    } else {
        jobs.items.insert(0, job);
        jobs.items.sort_by_key(|j| std::cmp::Reverse(created(j)));
        jobs.items.truncate(MAX_JOBS);
    }
    jobs.refresh();
}

/// A fresh job list merged with what the stream already delivered: the newer version of each
/// job wins, and jobs created after the listing was taken are kept.
pub fn merge_jobs(current: &[Job], loaded: Vec<Job>) -> Vec<Job> {
    let newest_loaded = loaded.iter().map(created).max();
    let mut merged = loaded;
    for job in current {
        match merged.iter_mut().find(|j| j.id == job.id) {
            Some(loaded) => {
                if loaded.version < job.version {
                    *loaded = job.clone();
                }
            }
            None => {
                if newest_loaded.is_none_or(|newest| created(job) > newest) {
                    merged.push(job.clone());
                }
            }
        }
    }
    merged.sort_by(|a, b| created(b).cmp(&created(a)).then_with(|| a.id.cmp(&b.id)));
    merged.truncate(MAX_JOBS);
    merged
}

#[cfg(test)]
mod tests {
    use pressluft_proto::v1::NodeStatus;

    use super::*;

    fn node(id: &str, name: &str, status: NodeStatus) -> Node {
        Node {
            id: id.into(),
            name: name.into(),
            status: status as i32,
            ..Node::default()
        }
    }

    #[test]
    fn filter_and_sort_keep_the_selected_item() {
        let mut list = List::default();
        list.apply(Ok(vec![
            node("1", "web-b", NodeStatus::Active),
            node("2", "web-a", NodeStatus::Failed),
            node("3", "db-1", NodeStatus::Active),
        ]));
        let names = |l: &List<Node>| l.shown().map(|n| n.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&list), ["db-1", "web-a", "web-b"], "by name");
        list.move_selection(Move::Down);
        assert_eq!(list.selected_item().map(|n| n.id.as_str()), Some("2"));
        list.next_sort();
        assert_eq!(list.sort_name(), "status");
        assert_eq!(names(&list), ["db-1", "web-b", "web-a"]);
        assert_eq!(
            list.selected_item().map(|n| n.id.as_str()),
            Some("2"),
            "followed"
        );
        list.set_filter("WEB".into());
        assert_eq!(names(&list), ["web-b", "web-a"]);
        assert_eq!(list.selected_item().map(|n| n.id.as_str()), Some("2"));
        list.set_filter("failed".into());
        assert_eq!(names(&list), ["web-a"], "status is searchable");
        list.set_filter("nothing".into());
        assert!(list.selected_item().is_none());
        list.set_filter(String::new());
        assert_eq!(list.shown().count(), 3);
    }
}
