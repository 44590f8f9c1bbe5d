//! The message catalog: every refusal a member can read, in one place.
//!
//! Each entry names a variant (or the part of one that reads differently), its stable
//! dotted code for hosts and logs, and the text a member reads, in Japanese and then in
//! English (DOM-25). The texts follow the seed's words (記号・番号・枝番, 暗証キー,
//! 「@」（アットマーク）) and say what to do next; none ever carries what the member
//! typed (SEC-17). The `code` and `message` methods of the field errors in
//! [`crate::domain`], of [`Rejection`] and of [`HashError`] are generated from these tables, so a reviewer
//! or a translator reads every member-facing refusal here, and a new variant does not
//! compile until it has both texts.
//!
//! Operator-facing errors (SMTP, the mail queue, configuration) keep their texts beside
//! their types: a member never reads them.

use std::borrow::Cow;

use crate::domain::card_number::CardPart;
use crate::domain::{
    BirthDateError, CardNumberError, EmailError, InsurerNumberError, KanaNameError, LoginId,
    LoginIdError, Nickname, NicknameError, PasswordError,
};
use crate::error::Rejection;
use crate::lang::Lang;
use crate::password_hash::HashError;

/// Generates `code` and `message` for each type from its rows
/// `pattern => code, japanese, english;`. A text is a `&'static str` or a `String` (for
/// the few that name a limit); the first row whose pattern matches answers.
macro_rules! catalog {
    ($($ty:ty { $($pat:pat => $code:expr, $ja:expr, $en:expr;)* })*) => {$(
        impl $ty {
            /// Stable dotted code for hosts, logs and tests, e.g.
            /// `"card_number.branch_length"` (DOM-25). The table is the message catalog
            /// (`src/catalog.rs`).
            #[must_use]
            #[allow(unused_variables)]
            pub fn code(&self) -> &'static str {
                match self {
                    $($pat => $code,)*
                }
            }

            /// The text shown to the member: the reason and what to do next, never what
            /// was typed (DOM-25, SEC-17). The table is the message catalog
            /// (`src/catalog.rs`).
            #[must_use]
            pub fn message(&self, lang: Lang) -> Cow<'static, str> {
                match self {
                    $($pat => match lang {
                        Lang::En => Cow::from($en),
                        Lang::Ja => Cow::from($ja),
                    },)*
                }
            }
        }
    )*};
}

/// The lead of every e-mail format refusal except the empty field's.
macro_rules! not_an_address {
    (ja) => {
        "メールアドレスの形式が正しくありません。"
    };
    (en) => {
        "The e-mail address is not valid. "
    };
}

/// What a member reads when the password cannot be hashed or checked: every
/// [`HashError`] is a server fault, so the text is the same and says nothing about the
/// account (SEC-23).
macro_rules! cannot_hash_now {
    (ja) => {
        "ただいまパスワードの処理ができません。しばらくしてから、もう一度お試しください。"
    };
    (en) => {
        "We cannot process your password right now. Please try again later."
    };
}

/// `TooManyRequests`: whole seconds to wait, at least one.
fn wait_seconds(retry_after: &time::Duration) -> i64 {
    retry_after.whole_seconds().max(1)
}

catalog! {
    EmailError {
        Self::Empty => "email.empty",
            "メールアドレスを入力してください。",
            "Please enter your e-mail address.";
        Self::TooLong => "email.too_long",
            concat!(not_an_address!(ja), "メールアドレスは254文字以内で入力してください。"),
            concat!(not_an_address!(en), "An e-mail address can be at most 254 characters long.");
        Self::ControlCharacter => "email.control_char",
            concat!(not_an_address!(ja), "使用できない制御文字や見えない文字が含まれています。メールアドレスを直接入力してください。"),
            concat!(not_an_address!(en), "It contains control or invisible characters. Please type the address directly.");
        Self::DisplayName => "email.display_name",
            concat!(not_an_address!(ja), "お名前や「<」「>」を含めず、メールアドレスだけを入力してください。"),
            concat!(not_an_address!(en), "Please enter only the address itself, without a name or \"<\" and \">\".");
        Self::Comment => "email.comment",
            concat!(not_an_address!(ja), "「(」「)」（かっこ）は使用できません。"),
            concat!(not_an_address!(en), "Parentheses \"(\" and \")\" cannot be used.");
        Self::Quoted => "email.quoted",
            concat!(not_an_address!(ja), "「\"」（ダブルクォーテーション）は使用できません。「\"」を外して入力してください。"),
            concat!(not_an_address!(en), "Double quotes (\") cannot be used. Please enter the address without them.");
        Self::Whitespace => "email.whitespace",
            concat!(not_an_address!(ja), "空白（スペース）を含めずに入力してください。"),
            concat!(not_an_address!(en), "Please enter the address without spaces.");
        Self::MissingAt => "email.missing_at",
            concat!(not_an_address!(ja), "「@」（アットマーク）が入っていません。"),
            concat!(not_an_address!(en), "The \"@\" is missing.");
        Self::MultipleAt => "email.multiple_at",
            concat!(not_an_address!(ja), "「@」（アットマーク）は1つだけ入力してください。メールアドレスは1つだけ登録できます。"),
            concat!(not_an_address!(en), "Please use exactly one \"@\"; only one address can be registered.");
        Self::LocalPartEmpty => "email.local_part_empty",
            concat!(not_an_address!(ja), "「@」の前の部分を入力してください。"),
            concat!(not_an_address!(en), "Please enter the part before the \"@\".");
        Self::LocalPartInvalid => "email.local_part_invalid",
            concat!(not_an_address!(ja), "「@」の前に使用できない文字が含まれています。半角英数字と記号 . ! # $ % & ' * + / = ? ^ _ ` { | } ~ - で入力してください。"),
            concat!(not_an_address!(en), "The part before the \"@\" contains a character that is not allowed. Use letters, digits and . ! # $ % & ' * + / = ? ^ _ ` { | } ~ -");
        Self::LocalPartNonAscii => "email.local_part_non_ascii",
            concat!(not_an_address!(ja), "「@」の前は半角英数字と記号で入力してください（ひらがな・カタカナ・漢字は使用できません）。"),
            concat!(not_an_address!(en), "The part before the \"@\" must use Latin letters, digits and symbols only.");
        Self::LocalPartTooLong => "email.local_part_too_long",
            concat!(not_an_address!(ja), "「@」の前は64文字以内で入力してください。"),
            concat!(not_an_address!(en), "The part before the \"@\" can be at most 64 characters long.");
        Self::DomainEmpty => "email.domain_empty",
            concat!(not_an_address!(ja), "「@」の後にドメインを入力してください。"),
            concat!(not_an_address!(en), "Please enter the domain after the \"@\".");
        Self::DomainInvalid => "email.domain_invalid",
            concat!(not_an_address!(ja), "「@」の後のドメインが正しくありません。「example.jp」のような形式で入力してください。"),
            concat!(not_an_address!(en), "The domain after the \"@\" is not valid. Please enter it like \"example.jp\".");
        Self::DomainNotDotted => "email.domain_not_dotted",
            concat!(not_an_address!(ja), "「@」の後には「example.jp」のように「.」（ドット）を含むドメインを入力してください。"),
            concat!(not_an_address!(en), "The domain after the \"@\" needs a dot, like \"example.jp\".");
        Self::DomainLabelTooLong => "email.domain_label_too_long",
            concat!(not_an_address!(ja), "「@」の後のドメインの「.」で区切られた各部分は63文字以内で入力してください。"),
            concat!(not_an_address!(en), "Each dot-separated part of the domain can be at most 63 characters long.");
        Self::LegacyNotAllowed => "email.legacy_not_allowed",
            concat!(not_an_address!(ja), "「.」（ドット）が連続している、または「@」の直前や先頭に「.」があるメールアドレスはご利用いただけません。別のメールアドレスをご登録ください。"),
            concat!(not_an_address!(en), "Addresses with two dots in a row, or a dot at the start or right before the \"@\", cannot be used. Please register another address.");
    }

    // In the words printed on the card.
    CardNumberError {
        Self::Empty => "card_number.empty",
            "記号・番号・枝番を入力してください。",
            "Please enter the symbol, number and branch number.";
        Self::Separator => "card_number.separator",
            "記号・番号・枝番は、ハイフン区切りで1つずつ入力してください（例: 999-123456-00）。",
            "Please separate the symbol, number and branch number with single hyphens (e.g. 999-123456-00).";
        Self::MissingPart => "card_number.missing_part",
            "記号・番号・枝番（2桁）をハイフン区切りで入力してください（例: 999-123456-00）。",
            "Please enter the symbol, number and the 2-digit branch number, separated by hyphens (e.g. 999-123456-00).";
        Self::Ambiguous => "card_number.ambiguous",
            "記号・番号・枝番を半角数字のハイフン区切りで入力してください（例: 999-123456-00）。",
            "Please enter the symbol, number and branch number as half-width digits separated by hyphens (e.g. 999-123456-00).";
        Self::NonDigit { part: CardPart::Symbol } => "card_number.non_digit",
            "記号は、保険証等に記載のとおり半角数字で入力してください。",
            "Please enter the symbol as shown on your card, in half-width digits.";
        Self::NonDigit { part: CardPart::Number } => "card_number.non_digit",
            "番号は半角数字で入力してください。",
            "Please enter the number in half-width digits.";
        Self::NonDigit { part: CardPart::Branch } => "card_number.non_digit",
            "枝番は半角数字2桁で入力してください。",
            "Please enter the branch number as 2 half-width digits.";
        Self::BranchLength => "card_number.branch_length",
            "枝番は半角数字2桁で入力してください。",
            "Please enter the branch number as 2 half-width digits.";
        Self::Length { .. } => "card_number.length",
            "記号・番号の桁数が正しくありません。先頭の0も含めて、保険証等に記載のとおり入力してください。",
            "The symbol or number has the wrong number of digits. Please enter it as shown on your card, including leading zeros.";
        Self::TooLong => "card_number.too_long",
            "記号・番号が長すぎます。保険証等に記載のとおり入力してください。",
            "The symbol or number is too long.";
    }

    InsurerNumberError {
        Self::Empty => "insurer_number.empty",
            "保険者番号を入力してください。",
            "Please enter the insurer number.";
        Self::NonDigit => "insurer_number.non_digit",
            "保険者番号は半角数字8桁で入力してください。",
            "Please enter the insurer number as 8 half-width digits.";
        Self::Length => "insurer_number.length",
            "保険者番号は半角数字8桁で入力してください。",
            "Please enter the insurer number as 8 half-width digits.";
        Self::CheckDigit => "insurer_number.check_digit",
            "保険者番号が正しくありません。保険証等に記載の8桁の番号をご確認ください。",
            "This insurer number is not valid. Please check the 8-digit number on your card.";
    }

    BirthDateError {
        Self::Empty => "birth_date.empty",
            "生年月日を入力してください。",
            "Please enter your date of birth.";
        Self::Format => "birth_date.format",
            "生年月日は、西暦の半角数字8桁（例: 19900401）または和暦（例: 平成2年4月1日）で入力してください。",
            "Please enter your date of birth as 8 half-width digits (e.g. 19900401) or as YYYY-MM-DD.";
        Self::InvalidDate => "birth_date.invalid_date",
            "存在しない日付です。生年月日をご確認ください。",
            "This date does not exist. Please check your date of birth.";
        Self::EraRange => "birth_date.era_range",
            "元号と年月日の組み合わせが正しくありません（例: 平成は31年4月30日まで）。生年月日をご確認ください。",
            "The era and year do not match (e.g. Heisei ends on 30 April 2019). Please check your date of birth.";
        Self::TooEarly => "birth_date.too_early",
            "1900年以降の生年月日を入力してください。",
            "Please enter a date of birth from 1900 onwards.";
        Self::InFuture => "birth_date.in_future",
            "未来の日付です。生年月日（特に年）をご確認ください。",
            "This date is in the future. Please check your date of birth (e.g. the year).";
    }

    KanaNameError {
        Self::Empty => "kana_name.empty",
            "氏名（カナ）を全角カナで入力してください。",
            "Please enter your name in full-width katakana.";
        Self::Kanji => "kana_name.kanji",
            "漢字は使えません。氏名は全角カナで入力してください。",
            "Kanji cannot be used. Please enter your name in full-width katakana.";
        Self::Latin => "kana_name.latin",
            "英字は使えません。氏名は全角カナで入力してください。",
            "Latin letters cannot be used. Please enter your name in full-width katakana.";
        Self::InvalidChar => "kana_name.invalid_char",
            "使えない文字が含まれています。氏名は全角カナで入力してください。",
            "Your name contains a character that cannot be used. Please enter it in full-width katakana.";
        Self::TooLong => "kana_name.too_long",
            "氏名（カナ）が長すぎます。",
            "Your name is too long.";
    }

    LoginIdError {
        Self::TooShort => "login_id.too_short",
            format!("ログインIDは半角英数字{}〜{}文字で入力してください。", LoginId::MIN_CHARS, LoginId::MAX_CHARS),
            format!("Please enter a login ID of {} to {} half-width letters and digits.", LoginId::MIN_CHARS, LoginId::MAX_CHARS);
        Self::TooLong => "login_id.too_long",
            format!("ログインIDは半角英数字{}〜{}文字で入力してください。", LoginId::MIN_CHARS, LoginId::MAX_CHARS),
            format!("Please enter a login ID of {} to {} half-width letters and digits.", LoginId::MIN_CHARS, LoginId::MAX_CHARS);
        Self::InvalidChar => "login_id.invalid_char",
            "ログインIDに使用できない文字が含まれています。半角英数字と記号（. _ - @）で入力してください。",
            "The login ID may only contain half-width letters, digits and . _ - @.";
        Self::NoLetterOrDigit => "login_id.no_letter_or_digit",
            "ログインIDには半角英字または数字を1文字以上含めてください。",
            "The login ID needs at least one half-width letter or digit.";
        Self::Identifying => "login_id.identifying",
            "メールアドレス、記号・番号、生年月日はログインIDに使用できません。",
            "Your e-mail address, insurance card symbol/number or date of birth cannot be used as a login ID.";
    }

    NicknameError {
        Self::Empty => "nickname.empty",
            "ニックネームを入力してください。",
            "Please enter a nickname.";
        Self::TooLong => "nickname.too_long",
            format!("ニックネームは{}文字以内で入力してください。", Nickname::MAX_CHARS),
            format!("Please enter a nickname of at most {} characters.", Nickname::MAX_CHARS);
        Self::InvalidChar => "nickname.invalid_char",
            "ニックネームに使用できない文字（改行、見えない文字、「<」「>」など）が含まれています。",
            "The nickname contains characters that cannot be used (line breaks, invisible characters, < or >).";
    }

    // Always the reason, never the password (SEC-17).
    PasswordError {
        Self::Empty => "password.empty",
            "パスワードを入力してください。",
            "Please enter a password.";
        Self::TooLongBytes => "password.too_long_bytes",
            "パスワードが長すぎます。短くして入力してください。",
            "The password is too long. Please enter a shorter one.";
        Self::TooShort { min } => "password.too_short",
            format!("パスワードは{min}文字以上で入力してください。"),
            format!("Please enter a password of at least {min} characters.");
        Self::TooLong { max } => "password.too_long",
            format!("パスワードは{max}文字以内で入力してください。"),
            format!("Please enter a password of at most {max} characters.");
        Self::Common => "password.common",
            "よく使われているパスワードは使用できません。",
            "This password is too commonly used. Please choose another.";
        Self::ContainsContext => "password.contains_context",
            "ログインID、メールアドレス、生年月日、記号・番号などを含むパスワードは使用できません。",
            "The password must not contain your login ID, e-mail address, date of birth, insurance card symbol/number or similar information.";
        Self::MismatchConfirmation => "password.mismatch_confirmation",
            "新パスワードと新パスワード(確認)が一致しません。",
            "The new password and its confirmation do not match.";
    }

    // A field error answers with its own code and text.
    Rejection {
        Self::InvalidInput(e) => e.code(),
            e.message(Lang::Ja),
            e.message(Lang::En);
        Self::LinkInvalid => "link.invalid",
            "このURLは無効です。メールに記載されたURLをもう一度ご確認ください。",
            "This link is not valid. Please check the link in the mail.";
        Self::LinkUsed => "link.used",
            "このURLは既に使用されています。お手数ですが最初から手続きをやり直してください。",
            "This link has already been used. Please start again.";
        Self::Expired => "expired",
            "有効期限が切れています。お手数ですが最初から手続きをやり直してください。",
            "This link or step has expired. Please start again.";
        Self::WrongStep => "flow.wrong_step",
            "この操作は現在行えません。最初から手続きをやり直してください。",
            "This step is not available now. Please start again.";
        Self::IdentityAlreadyVerified { .. } => "identity.already_verified",
            "本人確認は完了しています。画面に表示された認証キーと、メールで届いたURLから手続きを続けてください。メールが届かない場合は再送できます。",
            "Your identity is already confirmed. Continue with the 認証キー shown on the earlier screen and the link in the mail; the mail can be sent again.";
        Self::IdentityNotConfirmed => "identity.not_confirmed",
            "入力された内容では本人確認ができませんでした。記号・番号・枝番と生年月日をご確認ください。",
            "We could not confirm your identity with what you entered. Please check your 記号・番号・枝番 and date of birth.";
        Self::IdentityAttemptsExhausted => "identity.attempts_exhausted",
            "本人確認の試行回数が上限に達しました。しばらく時間をおいて、最初から手続きをやり直してください。",
            "Too many identity checks. Please wait a while and start again.";
        Self::AuthKeyIncorrect => "auth_key.incorrect",
            "認証キーが正しくありません。本人確認の画面に表示された認証キーを入力してください。",
            "The authentication key is not correct. Enter the key shown on the identity-check screen.";
        Self::AuthKeyAttemptsExhausted => "auth_key.attempts_exhausted",
            "認証キーの入力回数が上限に達したため、この認証キーは無効になりました。新規利用登録からやり直してください。",
            "Too many wrong entries: this authentication key is no longer valid. Please register again from the start.";
        Self::FamilyEmailInUse => "email.family_in_use",
            "ご家族と重複するメールアドレスは使用できません。一人ひとり個別のアドレスが必要です。",
            "This e-mail address is already used by a family member. Each member needs their own address.";
        Self::AlreadyRegistered => "account.already_registered",
            "既に利用登録がお済みです。ログイン画面から登録済みのログインIDでログインしてください。",
            "You are already registered. Please log in with your login ID.";
        Self::LoginIdTaken => "login_id.taken",
            "このログインIDは使用できません。別のログインIDを入力してください。",
            "This login ID cannot be used. Please choose another.";
        Self::LoginIdIdentifying => "login_id.identifying",
            "メールアドレス、記号・番号、生年月日をログインIDにすることはできません。",
            "Your login ID must not be your e-mail address, insurance card number or date of birth.";
        Self::PasswordConfirmationMismatch => "password.confirmation_mismatch",
            "新パスワードと新パスワード(確認)が一致しません。",
            "The new password and its confirmation do not match.";
        Self::PasswordSameAsTemporary => "password.same_as_temporary",
            "仮パスワードと同じパスワードは設定できません。",
            "The new password must differ from the temporary password.";
        Self::LoginFailed => "login.failed",
            "ログインIDまたはパスワードが正しくありません。",
            "The login ID or password is not correct.";
        Self::OtpIncorrect => "otp.incorrect",
            "暗証キーが正しくありません。メールに記載された暗証キーを入力してください。",
            "The 暗証キー is not correct. Enter the key from the mail.";
        Self::OtpInvalid => "otp.invalid",
            "この暗証キーは無効になりました。お手数ですがログイン画面から再度ログインしてください。",
            "This 暗証キー is no longer valid. Please log in again.";
        Self::OtpExpired => "otp.expired",
            "暗証キーの有効期限が切れました。「暗証キー再請求」から新しい暗証キーを受け取ってください。",
            "This 暗証キー has expired. Use 暗証キー再請求 to receive a new one.";
        Self::OtpReplaced => "otp.replaced",
            "この暗証キーは再請求により無効になりました。最新のメールに記載された暗証キーを入力してください。",
            "This 暗証キー was replaced when a new one was requested. Enter the key from the newest mail.";
        Self::OtpAttemptsExhausted => "otp.attempts_exhausted",
            "暗証キーの入力回数が上限に達しました。しばらく時間をおいてから、ログイン画面から再度ログインしてください。",
            "Too many wrong 暗証キー entries. Please wait a while and log in again.";
        Self::TooManyRequests { retry_after } => "too_many_requests",
            format!("短時間に操作が繰り返されました。{}秒ほど待ってから再度お試しください。", wait_seconds(retry_after)),
            format!("Too many requests. Please try again in {} seconds.", wait_seconds(retry_after));
        Self::Busy => "busy",
            "ただいま処理が混み合っています。もう一度お試しください。",
            "The request collided with another one. Please try again.";
        Self::CurrentPasswordIncorrect => "password.current_incorrect",
            "現在のパスワードが正しくありません。",
            "The current password is not correct.";
        Self::ReauthenticationRequired => "auth.reauthentication_required",
            "セキュリティ保護のため、もう一度ログインしてからお手続きください。",
            "For your security, please log in again before making this change.";
        Self::UnknownMember => "member.unknown",
            "加入者名簿に、資格のある該当の加入者が見つかりません。",
            "No eligible member with this identifier is on the roster.";
        Self::SecondFactorIncorrect => "factor.incorrect",
            "確認コードまたはリカバリーコードが正しくありません。認証アプリに表示されている最新の確認コードを入力してください。",
            "The confirmation code or recovery code is not correct. Enter the newest code your authenticator app shows.";
        Self::FactorUnavailable => "factor.unavailable",
            "この認証方法はご利用いただけません。",
            "This sign-in method is not available.";
        Self::LastFactorRequired => "factor.last_required",
            "2段階認証は必須のため、最後の認証方法は削除できません。先に別の認証方法を設定してください。",
            "Two-step verification is required, so the last method cannot be removed. Set up another method first.";
        Self::FactorSetupInvalid => "factor.setup_invalid",
            "設定の有効期限が切れたか、すでに完了しています。お手数ですが最初から設定してください。",
            "This setup has expired or is already finished. Please start the setup again.";
        Self::PasskeyNameInvalid => "factor.passkey_name_invalid",
            "パスキーの名前は1〜32文字で入力してください。",
            "Give the passkey a name of 1 to 32 characters.";
    }

    // Server faults: one text for all (SEC-23); the codes tell operators apart.
    HashError {
        Self::MalformedStoredHash(_) => "password_hash.malformed_stored_hash",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::UnknownPepperId { .. } => "password_hash.unknown_pepper_id",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::DuplicatePepperId { .. } => "password_hash.duplicate_pepper_id",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::InvalidParams(_) => "password_hash.invalid_params",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::ParamsAboveCeiling => "password_hash.params_above_ceiling",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::InvalidConcurrency => "password_hash.invalid_concurrency",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::Argon2(_) => "password_hash.argon2",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::Rng(_) => "password_hash.rng",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::NoRuntime => "password_hash.no_runtime",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
        Self::TaskFailed => "password_hash.task_failed",
            cannot_hash_now!(ja),
            cannot_hash_now!(en);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use time::Duration;

    use super::*;
    use crate::domain::InputError;

    /// One value of every row of the field-error tables.
    fn every_field_error() -> Vec<InputError> {
        use CardPart::{Branch, Number, Symbol};
        let mut all: Vec<InputError> = Vec::new();
        all.extend(
            [
                EmailError::Empty,
                EmailError::TooLong,
                EmailError::ControlCharacter,
                EmailError::DisplayName,
                EmailError::Comment,
                EmailError::Quoted,
                EmailError::Whitespace,
                EmailError::MissingAt,
                EmailError::MultipleAt,
                EmailError::LocalPartEmpty,
                EmailError::LocalPartInvalid,
                EmailError::LocalPartNonAscii,
                EmailError::LocalPartTooLong,
                EmailError::DomainEmpty,
                EmailError::DomainInvalid,
                EmailError::DomainNotDotted,
                EmailError::DomainLabelTooLong,
                EmailError::LegacyNotAllowed,
            ]
            .map(InputError::from),
        );
        all.extend(
            [
                CardNumberError::Empty,
                CardNumberError::Separator,
                CardNumberError::MissingPart,
                CardNumberError::Ambiguous,
                CardNumberError::NonDigit { part: Symbol },
                CardNumberError::NonDigit { part: Number },
                CardNumberError::NonDigit { part: Branch },
                CardNumberError::BranchLength,
                CardNumberError::Length { part: Number },
                CardNumberError::TooLong,
            ]
            .map(InputError::from),
        );
        all.extend(
            [
                InsurerNumberError::Empty,
                InsurerNumberError::NonDigit,
                InsurerNumberError::Length,
                InsurerNumberError::CheckDigit,
            ]
            .map(InputError::from),
        );
        all.extend(
            [
                BirthDateError::Empty,
                BirthDateError::Format,
                BirthDateError::InvalidDate,
                BirthDateError::EraRange,
                BirthDateError::TooEarly,
                BirthDateError::InFuture,
            ]
            .map(InputError::from),
        );
        all.extend(
            [
                KanaNameError::Empty,
                KanaNameError::Kanji,
                KanaNameError::Latin,
                KanaNameError::InvalidChar,
                KanaNameError::TooLong,
            ]
            .map(InputError::from),
        );
        all.extend(
            [
                LoginIdError::TooShort,
                LoginIdError::TooLong,
                LoginIdError::InvalidChar,
                LoginIdError::NoLetterOrDigit,
                LoginIdError::Identifying,
            ]
            .map(InputError::from),
        );
        all.extend(
            [
                NicknameError::Empty,
                NicknameError::TooLong,
                NicknameError::InvalidChar,
            ]
            .map(InputError::from),
        );
        all.extend(
            [
                PasswordError::Empty,
                PasswordError::TooLongBytes,
                PasswordError::TooShort { min: 15 },
                PasswordError::TooLong { max: 128 },
                PasswordError::Common,
                PasswordError::ContainsContext,
                PasswordError::MismatchConfirmation,
            ]
            .map(InputError::from),
        );
        all
    }

    // DOM-25: every field error has its own code under its field's prefix, and a text in
    // each language (English in ASCII, for logs and hosts that cannot show Japanese).
    #[test]
    fn dom_25_every_field_error_has_a_code_and_both_texts() {
        let all = every_field_error();
        let mut codes = HashSet::new();
        for e in &all {
            let code = e.code();
            let field = code.split('.').next().unwrap_or_default();
            let variant = format!("{e:?}");
            let prefix = variant.split('(').next().unwrap_or_default();
            let want = match prefix {
                "Email" => "email",
                "CardNumber" => "card_number",
                "InsurerNumber" => "insurer_number",
                "BirthDate" => "birth_date",
                "KanaName" => "kana_name",
                "LoginId" => "login_id",
                "Nickname" => "nickname",
                "Password" => "password",
                other => panic!("a field the catalog test does not know: {other}"),
            };
            assert_eq!(field, want, "{code}");
            codes.insert(code);
            let (ja, en) = (e.message(Lang::Ja), e.message(Lang::En));
            assert!(!ja.is_empty() && !en.is_empty(), "{code}");
            assert!(en.is_ascii(), "{code}: {en}");
            assert!(!ja.is_ascii(), "{code}: {ja}");
            assert!(ja.ends_with('。'), "{code}: {ja}");
        }
        // The three parts of NonDigit share one code; every other row has its own.
        assert_eq!(codes.len(), all.len() - 2);
    }

    // DOM-25, in the seed's words: the texts that name a limit say the limit in force;
    // a rejected field answers with the field's own code and text; a throttle names
    // whole seconds, at least one.
    #[test]
    fn dom_25_texts_name_their_limits() {
        let wait = Rejection::TooManyRequests {
            retry_after: Duration::milliseconds(300),
        };
        let field = Rejection::InvalidInput(CardNumberError::BranchLength.into());
        for (code, text, want) in [
            (
                LoginIdError::TooLong.code(),
                LoginIdError::TooLong.message(Lang::Ja),
                "ログインIDは半角英数字6〜32文字で入力してください。",
            ),
            (
                NicknameError::TooLong.code(),
                NicknameError::TooLong.message(Lang::En),
                "Please enter a nickname of at most 20 characters.",
            ),
            (
                PasswordError::TooShort { min: 8 }.code(),
                PasswordError::TooShort { min: 8 }.message(Lang::Ja),
                "パスワードは8文字以上で入力してください。",
            ),
            (
                field.code(),
                field.message(Lang::Ja),
                "枝番は半角数字2桁で入力してください。",
            ),
            (
                wait.code(),
                wait.message(Lang::Ja),
                "短時間に操作が繰り返されました。1秒ほど待ってから再度お試しください。",
            ),
        ] {
            assert_eq!(text, want, "{code}");
        }
        assert_eq!(field.code(), "card_number.branch_length");
    }

    // DOM-25: every e-mail refusal but the empty field's says first that the form is
    // wrong.
    #[test]
    fn dom_25_email_refusals_lead_with_the_form() {
        for e in every_field_error() {
            if let InputError::Email(inner) = e {
                let lead = inner.message(Lang::Ja).starts_with(not_an_address!(ja));
                assert_eq!(lead, inner != EmailError::Empty, "{}", inner.code());
            }
        }
    }
}
