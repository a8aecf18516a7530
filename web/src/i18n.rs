//! The page's own strings in English, Russian and Ukrainian (the lesson texts
//! carry their own three languages).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ru,
    Uk,
}

pub const LANGS: [Lang; 3] = [Lang::En, Lang::Ru, Lang::Uk];

/// Where the page keeps the user's language (`localStorage`).
pub const LANG_KEY: &str = "amqp-playground.lang";

impl Lang {
    /// `en`, `ru`, `uk`: the key of `sim_core::scenario::Text`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
            Lang::Uk => "uk",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        LANGS.into_iter().find(|l| l.code() == code)
    }

    /// The language the page opens in: the one the user chose last
    /// (`saved`), else the first of the browser's languages (`uk-UA`, `ru`…)
    /// the page speaks, else English.
    pub fn first(saved: Option<&str>, preferred: &[String]) -> Lang {
        saved
            .and_then(Lang::from_code)
            .or_else(|| {
                preferred.iter().find_map(|tag| {
                    let primary = tag.split('-').next().unwrap_or_default();
                    Lang::from_code(&primary.to_ascii_lowercase())
                })
            })
            .unwrap_or_default()
    }

    /// The language's own name, for the switcher.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
            Lang::Uk => "Українська",
        }
    }
}

/// `[key, en, ru, uk]`.
const STRINGS: &[[&str; 4]] = &[
    ["tutorials", "Tutorials", "Уроки", "Уроки"],
    ["course", "Course tasks", "Задачи курса", "Завдання курсу"],
    ["reliability", "Reliability", "Надёжность", "Надійність"],
    ["lessons", "Lessons", "Уроки", "Уроки"],
    ["ready", "ready", "готово", "готові"],
    ["unacked", "unacked", "без ack", "без ack"],
    ["processed", "done", "обработано", "оброблено"],
    ["waiting", "not subscribed", "не подписан", "не підписаний"],
    ["idle", "idle", "свободен", "вільний"],
    ["busy", "busy", "занят", "зайнятий"],
    [
        "prefetch-full",
        "prefetch full",
        "prefetch заполнен",
        "prefetch заповнений",
    ],
    ["down", "down", "упал", "впав"],
    [
        "connecting",
        "connecting to RabbitMQ…",
        "подключение к RabbitMQ…",
        "підключення до RabbitMQ…",
    ],
    [
        "link-failed",
        "no connection",
        "нет соединения",
        "немає з'єднання",
    ],
    [
        "close-lesson",
        "Close lesson",
        "Закрыть урок",
        "Закрити урок",
    ],
    [
        "restart-lesson",
        "↺ Run again",
        "↺ Запустить заново",
        "↺ Запустити знову",
    ],
    ["step", "Step", "Шаг", "Крок"],
    ["back", "Back", "Назад", "Назад"],
    ["next", "Next", "Далее", "Далі"],
    ["predict", "Predict:", "Предскажите:", "Передбачте:"],
    [
        "choose-first",
        "Choose an answer: the run waits for it.",
        "Выберите ответ: запуск ждёт его.",
        "Оберіть відповідь: запуск чекає на неї.",
    ],
    [
        "watch",
        "Now watch the run.",
        "Теперь смотрите на запуск.",
        "Тепер дивіться на запуск.",
    ],
    ["right", "Right!", "Верно!", "Правильно!"],
    ["not-quite", "Not quite.", "Не совсем.", "Не зовсім."],
    [
        "all-passed",
        "All checks passed",
        "Все проверки пройдены",
        "Усі перевірки пройдено",
    ],
    [
        "some-failed",
        "Some checks failed",
        "Некоторые проверки не пройдены",
        "Деякі перевірки не пройдено",
    ],
    ["expected", "expected", "ожидалось", "очікувалось"],
    ["got", "got", "получено", "отримано"],
    ["scene", "Scene", "Сцена", "Сцена"],
    ["publish", "Publish", "Опубликовать", "Опублікувати"],
    ["play", "▶ Play", "▶ Пуск", "▶ Пуск"],
    ["pause", "❚❚ Pause", "❚❚ Пауза", "❚❚ Пауза"],
    ["published", "published", "опубликовано", "опубліковано"],
    ["received", "received", "получено", "отримано"],
    ["in-queue", "in queue", "в очереди", "у черзі"],
    [
        "consumer-received",
        "Consumer received",
        "Получено потребителем",
        "Отримано споживачем",
    ],
    [
        "broker-events",
        "Broker events",
        "События брокера",
        "Події брокера",
    ],
    [
        "nothing-received",
        "Nothing received yet.",
        "Пока ничего не получено.",
        "Поки нічого не отримано.",
    ],
    ["why", "Why? ", "Почему? ", "Чому? "],
    [
        "why-hint",
        "Press Publish: the exchange's routing decision is explained here.",
        "Нажмите «Опубликовать»: здесь объясняется, куда exchange направил сообщение.",
        "Натисніть «Опублікувати»: тут пояснюється, куди exchange спрямував повідомлення.",
    ],
    ["language", "Language", "Язык", "Мова"],
    ["projector", "Projector", "Проектор", "Проєктор"],
    [
        "contrast",
        "High contrast",
        "Высокий контраст",
        "Висока контрастність",
    ],
    [
        "help",
        "Keyboard shortcuts",
        "Горячие клавиши",
        "Гарячі клавіші",
    ],
    [
        "help-space",
        "Space: play / pause",
        "Пробел: пуск / пауза",
        "Пробіл: пуск / пауза",
    ],
    [
        "help-right",
        "→: one event forward (in a lesson: next step)",
        "→: на событие вперёд (в уроке: следующий шаг)",
        "→: на подію вперед (в уроці: наступний крок)",
    ],
    [
        "help-left",
        "←: one event back (in a lesson: previous step)",
        "←: на событие назад (в уроке: предыдущий шаг)",
        "←: на подію назад (в уроці: попередній крок)",
    ],
    [
        "help-p",
        "P: publish (playground)",
        "P: опубликовать (песочница)",
        "P: опублікувати (пісочниця)",
    ],
    ["help-q", "?: this help", "?: эта справка", "?: ця довідка"],
    ["close", "Close", "Закрыть", "Закрити"],
    [
        "sim-paused",
        "simulation paused",
        "симуляция на паузе",
        "симуляцію призупинено",
    ],
    [
        "declaring",
        "declaring the scene…",
        "объявляем сцену…",
        "оголошуємо сцену…",
    ],
    [
        "mode-real",
        "Real RabbitMQ instead of the simulation",
        "Настоящий RabbitMQ вместо симуляции",
        "Справжній RabbitMQ замість симуляції",
    ],
    ["files", "Files", "Файлы", "Файли"],
    ["import", "Import…", "Импорт…", "Імпорт…"],
    [
        "export-definitions",
        "Export definitions.json",
        "Экспорт definitions.json",
        "Експорт definitions.json",
    ],
    [
        "export-scenario",
        "Export scenario",
        "Экспорт сценария",
        "Експорт сценарію",
    ],
    ["share", "Share link", "Ссылка", "Посилання"],
    [
        "share-hint",
        "The link carries the whole scene: opening it shows the same scene.",
        "Ссылка содержит всю сцену: по ней откроется та же сцена.",
        "Посилання містить усю сцену: за ним відкриється та сама сцена.",
    ],
    ["download", "Download", "Скачать", "Завантажити"],
    ["metrics", "Metrics", "Метрики", "Метрики"],
    [
        "queue-depth",
        "Messages waiting in queues",
        "Сообщений в очередях",
        "Повідомлень у чергах",
    ],
    [
        "rates",
        "Rates per second",
        "Скорость в секунду",
        "Швидкість за секунду",
    ],
    ["delivered", "delivered", "доставлено", "доставлено"],
    ["total-time", "total time", "общее время", "загальний час"],
    [
        "st-sim",
        "simulation running",
        "симуляция работает",
        "симуляція працює",
    ],
    [
        "st-connecting",
        "connecting…",
        "подключение…",
        "підключення…",
    ],
    [
        "st-bridge",
        "bridge connected, waiting for broker…",
        "мост подключён, ждём брокер…",
        "міст підключено, чекаємо брокер…",
    ],
    [
        "st-connected",
        "connected to RabbitMQ",
        "подключено к RabbitMQ",
        "підключено до RabbitMQ",
    ],
    [
        "st-no-bridge",
        "bridge unreachable",
        "мост недоступен",
        "міст недоступний",
    ],
    [
        "st-no-broker",
        "broker unreachable",
        "брокер недоступен",
        "брокер недоступний",
    ],
    // Short: the label sits between the producer and the exchange.
    [
        "sc-routing-key",
        "routing key",
        "ключ маршрута",
        "ключ маршруту",
    ],
    [
        "sc-binding-key",
        "binding key",
        "ключ привязки",
        "ключ прив'язки",
    ],
    ["sc-bound", "bound", "привязана", "прив'язана"],
    ["sc-deliver", "deliver", "доставка", "доставка"],
    ["sc-publish", "publish", "публикация", "публікація"],
    [
        "sc-aria",
        "Producer publishes to {0} exchange {1}, which routes to {2}",
        "Producer публикует в {0} exchange {1}, который направляет в {2}",
        "Producer публікує в {0} exchange {1}, який спрямовує до {2}",
    ],
    [
        "sc-aria-queue",
        "queue {0} consumed by {1}",
        "очередь {0}, её читает {1}",
        "черга {0}, її читає {1}",
    ],
    // Seconds, after a number; the most a chart shows.
    ["sec", "s", "с", "с"],
    ["and", " and ", " и ", " і "],
    ["max", "max", "макс.", "макс."],
    ["retry", "Retry", "Повторить", "Повторити"],
    [
        "retry-real",
        "Retry real mode",
        "Повторить подключение к RabbitMQ",
        "Повторити підключення до RabbitMQ",
    ],
    [
        "use-sim",
        "Use simulation",
        "Перейти на симуляцию",
        "Перейти на симуляцію",
    ],
    [
        "use-sim-long",
        "Back to the simulation",
        "Вернуться к симуляции",
        "Повернутися до симуляції",
    ],
    [
        "reset-scene",
        "Reset scene",
        "Сбросить сцену",
        "Скинути сцену",
    ],
    [
        "reset-scene-long",
        "Declare the scene again",
        "Объявить сцену заново",
        "Оголосити сцену знову",
    ],
    ["dismiss", "Dismiss", "Скрыть", "Сховати"],
    [
        "dismiss-long",
        "Dismiss this message",
        "Скрыть это сообщение",
        "Сховати це повідомлення",
    ],
    ["controls", "Controls", "Управление", "Керування"],
    [
        "message-flow",
        "Message flow",
        "Поток сообщений",
        "Потік повідомлень",
    ],
    ["a-play", "Play", "Пуск", "Пуск"],
    ["a-pause", "Pause", "Пауза", "Пауза"],
    [
        "publish-key",
        "Publish (key P)",
        "Опубликовать (клавиша P)",
        "Опублікувати (клавіша P)",
    ],
    [
        "publish-to",
        "Publish one message to exchange {0}",
        "Опубликовать одно сообщение в exchange {0}",
        "Опублікувати одне повідомлення в exchange {0}",
    ],
    [
        "file-too-large",
        "{0}: the file is too large ({1} KB; at most 2 MB)",
        "{0}: файл слишком большой ({1} КБ; не больше 2 МБ)",
        "{0}: файл завеликий ({1} КБ; не більше 2 МБ)",
    ],
    [
        "file-not-text",
        "{0}: the file cannot be read as text",
        "{0}: файл не читается как текст",
        "{0}: файл не читається як текст",
    ],
    [
        "no-lesson",
        "there is no lesson '{0}'",
        "урока '{0}' нет",
        "уроку '{0}' немає",
    ],
    [
        "lesson-broken",
        "lesson '{0}': {1}",
        "урок '{0}': {1}",
        "урок '{0}': {1}",
    ],
    [
        "direct",
        "Direct: one queue",
        "Direct: одна очередь",
        "Direct: одна черга",
    ],
    [
        "fanout",
        "Fanout: two queues",
        "Fanout: две очереди",
        "Fanout: дві черги",
    ],
];

/// Every table of page strings (the views' modules keep their own).
fn all_strings() -> impl Iterator<Item = &'static [&'static str; 4]> {
    STRINGS
        .iter()
        .chain(crate::timeline::STRINGS)
        .chain(crate::compare::STRINGS)
}

/// `ms` as seconds with `digits` decimals and the unit in `lang` ("12.4 с").
pub fn seconds(ms: u64, digits: usize, lang: Lang) -> String {
    format!("{:.*} {}", digits, ms as f64 / 1000.0, t(lang, "sec"))
}

/// The page string `key` in `lang` (`?` if unknown, so a typo shows; never a panic).
pub fn t(lang: Lang, key: &str) -> &'static str {
    for row in all_strings() {
        if row[0] == key {
            return match lang {
                Lang::En => row[1],
                Lang::Ru => row[2],
                Lang::Uk => row[3],
            };
        }
    }
    "?"
}

/// Page settings that are not about the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ui {
    pub lang: Lang,
    pub projector: bool,
    pub contrast: bool,
    pub help: bool,
    pub picker: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiAction {
    Lang(Lang),
    Projector,
    Contrast,
    /// Toggle (`None`) or set the help overlay.
    Help(Option<bool>),
    Picker(Option<bool>),
    /// Nothing changes; the page draws again (something it shows arrived).
    Redraw,
}

impl Ui {
    pub fn apply(&mut self, a: UiAction) {
        match a {
            UiAction::Lang(l) => self.lang = l,
            UiAction::Projector => self.projector = !self.projector,
            UiAction::Contrast => self.contrast = !self.contrast,
            UiAction::Help(v) => self.help = v.unwrap_or(!self.help),
            UiAction::Picker(v) => self.picker = v.unwrap_or(!self.picker),
            UiAction::Redraw => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_has_three_non_empty_translations_and_unique_keys() {
        let mut keys = std::collections::BTreeSet::new();
        for row in all_strings() {
            assert!(keys.insert(row[0]), "duplicate key {}", row[0]);
            assert!(row.iter().all(|s| !s.is_empty()), "{row:?}");
        }
        assert_eq!(t(Lang::Ru, "next"), "Далее");
        assert_eq!(t(Lang::Uk, "next"), "Далі");
        assert_eq!(t(Lang::En, "no-such-key"), "?");
        assert_eq!(Lang::from_code("uk"), Some(Lang::Uk));
        assert_eq!(Lang::from_code("de"), None);
    }

    #[test]
    fn the_page_opens_in_the_chosen_else_the_browsers_language() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Lang::first(Some("ru"), &tags(&["uk-UA"])), Lang::Ru);
        assert_eq!(
            Lang::first(None, &tags(&["de-DE", "uk-UA", "ru"])),
            Lang::Uk
        );
        assert_eq!(Lang::first(Some("xx"), &tags(&["RU-ru"])), Lang::Ru);
        assert_eq!(Lang::first(None, &tags(&["de", "fr"])), Lang::En);
        assert_eq!(Lang::first(None, &[]), Lang::En);
    }

    #[test]
    fn every_key_the_views_use_exists() {
        let sources = [
            include_str!("app.rs"),
            include_str!("lesson_view.rs"),
            include_str!("files.rs"),
            include_str!("timeline_view.rs"),
            include_str!("compare_view.rs"),
        ];
        let mut missing = Vec::new();
        for src in sources {
            for part in src.split("t(lang, \"").skip(1) {
                let key = part.split('"').next().unwrap_or_default();
                if t(Lang::En, key) == "?" {
                    missing.push(key.to_string());
                }
            }
        }
        assert!(missing.is_empty(), "missing UI strings: {missing:?}");
    }

    /// What a user reads goes through the tables: no view writes an
    /// English label, title or button text of its own (names excepted).
    #[test]
    fn views_write_no_english_of_their_own() {
        let sources = [
            ("app.rs", include_str!("app.rs")),
            ("lesson_view.rs", include_str!("lesson_view.rs")),
            ("files.rs", include_str!("files.rs")),
            ("timeline_view.rs", include_str!("timeline_view.rs")),
            ("compare_view.rs", include_str!("compare_view.rs")),
            ("workbench_view.rs", include_str!("workbench_view.rs")),
        ];
        // Names, not words: the product, the modes' names, AMQP roles.
        let names = ["AMQP Playground", "Sim", "Real", "Consumer", "Producer"];
        let mut english = Vec::new();
        for (file, src) in sources {
            for opening in ["aria-label=\"", "title=\"", "placeholder=\"", "{ \""] {
                for part in src.split(opening).skip(1) {
                    let text = part.split('"').next().unwrap_or_default();
                    let worded = text.starts_with(|c: char| c.is_ascii_uppercase())
                        && text.chars().filter(char::is_ascii_lowercase).count() > 1;
                    if worded && !names.contains(&text) {
                        english.push(format!("{file}: {text:?}"));
                    }
                }
            }
        }
        assert!(english.is_empty(), "English written in a view: {english:?}");
    }

    #[test]
    fn ui_toggles() {
        let mut ui = Ui::default();
        ui.apply(UiAction::Help(None));
        assert!(ui.help);
        ui.apply(UiAction::Help(Some(false)));
        assert!(!ui.help);
        ui.apply(UiAction::Projector);
        ui.apply(UiAction::Contrast);
        ui.apply(UiAction::Lang(Lang::Uk));
        assert_eq!((ui.projector, ui.contrast, ui.lang), (true, true, Lang::Uk));
    }
}
