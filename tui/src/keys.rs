//! The key map: which [`Action`] a key means depends on what has the keyboard (an overlay, the
//! filter being edited, or the view).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{Action, App, Overlay, Tab};
use crate::event::Event;
use crate::lists::Move;

/// Every key of the view, for the help overlay: (keys, what).
pub const HELP: &[(&str, &str)] = &[
    ("tab l → / ⇧tab h ←", "next / previous view"),
    ("1 2 3 4", "nodes, sites, jobs, activity"),
    ("j ↓ / k ↑", "move down / up"),
    ("pgdn pgup, g G", "page, first / last row"),
    ("enter", "open the site or job"),
    ("esc", "back, close, clear the filter"),
    ("/", "filter the list (enter keeps it)"),
    ("s", "next sort order"),
    ("r", "reload everything"),
    ("d", "deploy (site: environment)"),
    ("u", "roll back to the previous release"),
    ("b", "back up now"),
    ("R", "restore a backup"),
    ("c", "clone to a staging environment"),
    ("p", "promote staging (drift shown first)"),
    ("m", "magic login URL (copied: OSC 52)"),
    ("x", "cancel the job"),
    ("P", "provision the node"),
    ("y enter / n esc", "confirm / cancel a dialog"),
    ("?", "this help"),
    ("q, ctrl-c", "quit"),
];

/// Translates an event into an action; `None` for keys without a binding.
pub fn action(app: &App, event: Event) -> Option<Action> {
    match event {
        Event::Key(key) => key_action(app, key),
        Event::Resize => Some(Action::Redraw),
        Event::Tick(now) => Some(Action::Tick(now)),
        // The loop stops on its own when input fails; nothing to update.
        Event::InputFailed(_) => None,
        Event::Server(update) => Some(Action::Server(update)),
    }
}

/// The key map.
pub fn key_action(app: &App, key: KeyEvent) -> Option<Action> {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Some(Action::Quit);
    }
    if let Some(overlay) = &app.overlay {
        return overlay_key(overlay, key);
    }
    if app.filtering {
        return text_key(key);
    }
    let action = match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Esc | KeyCode::Backspace => Action::Back,
        KeyCode::Enter => Action::Open,
        KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => Action::NextTab,
        KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => Action::PrevTab,
        KeyCode::Char('1') => Action::Show(Tab::Nodes),
        KeyCode::Char('2') => Action::Show(Tab::Sites),
        KeyCode::Char('3') => Action::Show(Tab::Jobs),
        KeyCode::Char('4') => Action::Show(Tab::Activity),
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('s') => Action::Sort,
        KeyCode::Char('r') => Action::Refresh,
        KeyCode::Char('d') => Action::Deploy,
        KeyCode::Char('u') => Action::Rollback,
        KeyCode::Char('b') => Action::BackupNow,
        KeyCode::Char('R') => Action::Restore,
        KeyCode::Char('c') => Action::Clone,
        KeyCode::Char('p') => Action::Promote,
        KeyCode::Char('m') => Action::Login,
        KeyCode::Char('x') => Action::Cancel,
        KeyCode::Char('P') => Action::Provision,
        code => return movement(code).map(Action::Move),
    };
    Some(action)
}

fn movement(code: KeyCode) -> Option<Move> {
    Some(match code {
        KeyCode::Down | KeyCode::Char('j') => Move::Down,
        KeyCode::Up | KeyCode::Char('k') => Move::Up,
        KeyCode::PageDown => Move::PageDown,
        KeyCode::PageUp => Move::PageUp,
        KeyCode::Home | KeyCode::Char('g') => Move::Top,
        KeyCode::End | KeyCode::Char('G') => Move::Bottom,
        _ => return None,
    })
}

fn overlay_key(overlay: &Overlay, key: KeyEvent) -> Option<Action> {
    match overlay {
        Overlay::Input { .. } => text_key(key),
        Overlay::Confirm { .. } => match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => Some(Action::Submit),
            KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => Some(Action::Back),
            _ => None,
        },
        Overlay::Choose { .. } => match key.code {
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
            code => movement(code).map(Action::Move),
        },
        Overlay::Help | Overlay::Message { .. } | Overlay::Busy(_) => match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | '?') => Some(Action::Back),
            _ => None,
        },
    }
}

fn text_key(key: KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Enter => Some(Action::Submit),
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Backspace => Some(Action::Erase),
        KeyCode::Char(c) => Some(Action::Type(c)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::KeyEventKind;

    use super::*;
    use crate::app::tests::app;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new_with_kind(code, KeyModifiers::NONE, KeyEventKind::Press)
    }

    #[test]
    fn keys_mean_different_things_by_mode() {
        let mut app = app();
        assert_eq!(
            key_action(&app, key(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        assert_eq!(
            key_action(&app, key(KeyCode::Char('j'))),
            Some(Action::Move(Move::Down))
        );
        assert_eq!(
            key_action(&app, key(KeyCode::Down)),
            Some(Action::Move(Move::Down))
        );
        assert_eq!(
            key_action(&app, key(KeyCode::Char('4'))),
            Some(Action::Show(Tab::Activity))
        );
        app.filtering = true;
        assert_eq!(
            key_action(&app, key(KeyCode::Char('q'))),
            Some(Action::Type('q'))
        );
        app.filtering = false;
        app.overlay = Some(Overlay::Help);
        assert_eq!(key_action(&app, key(KeyCode::Char('j'))), None);
        assert_eq!(key_action(&app, key(KeyCode::Esc)), Some(Action::Back));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(key_action(&app, ctrl_c), Some(Action::Quit), "always");
    }

    #[test]
    fn every_view_key_is_in_the_help() {
        let app = app();
        let help: String = HELP.iter().fold(String::new(), |mut all, (k, _)| {
            all.push(' ');
            all.push_str(k);
            all.push(' ');
            all
        });
        for c in "qjkgGsrdubRcpmxP/1234?".chars() {
            assert!(
                key_action(&app, key(KeyCode::Char(c))).is_some(),
                "{c} is bound"
            );
            assert!(help.contains(c), "{c} is in the help");
        }
    }
}
