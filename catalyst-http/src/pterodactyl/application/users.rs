//! `/api/application/users`: list (exact filters), get, by external id, create, update, delete.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use catalyst_core::model::User;
use catalyst_core::ports::Lookup;
use catalyst_runtime::control::{NewUser, UserPatch};
use serde_json::{Value, json};

use crate::AppState;
use crate::pterodactyl::{
    Caller, Input, ListQuery, Num, PResult, Params, PteroError, created, item, list, no_content, time,
};

crate::pterodactyl::routes! {
    get "/api/application/users" => list_users, 200, "Users (`filter[email|username|external_id|uuid]`, exact)";
    post "/api/application/users" => create_user, 201, "Create a user (password optional)";
    get "/api/application/users/external/{external}" => by_external, 200, "A user by external id, exactly";
    get "/api/application/users/{id}" => get_user, 200, "One user";
    patch "/api/application/users/{id}" => update_user, 200, "Change a user (password too)";
    delete "/api/application/users/{id}" => delete_user, 204, "Delete a user without servers";
}

/// A user as Pterodactyl's `UserTransformer` shows it.
pub(super) fn user_view(u: &User) -> Value {
    item(
        "user",
        json!({
            "id": u.number, "external_id": u.external_id, "uuid": u.id, "username": u.username, "email": u.email,
            "first_name": u.first_name, "last_name": u.last_name, "language": "en",
            "root_admin": !u.roles.is_empty(), "2fa": false,
            "created_at": time(u.created_at), "updated_at": time(u.updated_at),
        }),
    )
}

/// `filter[email]`, `filter[username]` and `filter[external_id]` match exactly (Pterodactyl's substring match puts
/// servers on the wrong account: pterodactyl/whmcs#151).
async fn list_users(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<ListQuery>,
) -> PResult<Json<Value>> {
    let path = "/api/application/users";
    let one = if let Some(email) = &q.filter_email {
        Some(s.catalyst.find_user_by_email(&who, email).await?)
    } else if let Some(ext) = &q.filter_external_id {
        Some(found(s.catalyst.find_user(&who, Lookup::External(ext)).await)?)
    } else if let Some(username) = &q.filter_username {
        Some(s.catalyst.find_user_by_username(&who, username).await?)
    } else if let Some(uuid) = &q.filter_uuid {
        match uuid.parse() {
            Ok(id) => Some(found(s.catalyst.get_user(&who, id).await)?),
            Err(_) => Some(None),
        }
    } else {
        None
    };
    if let Some(one) = one {
        q.pages()?;
        let data: Vec<Value> = one.iter().map(user_view).collect();
        let total = data.len() as u64;
        return Ok(Json(list(&q, path, data, total)?));
    }
    let page = s.catalyst.list_users(&who, q.page()?).await?;
    Ok(Json(list(&q, path, page.items.iter().map(user_view).collect(), page.total)?))
}

/// A lookup that found nothing is an empty filter result, not an error.
fn found(r: catalyst_core::Result<User>) -> PResult<Option<User>> {
    match r {
        Ok(u) => Ok(Some(u)),
        Err(e) if e.kind() == catalyst_core::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn get_user(State(s): State<AppState>, Caller(who): Caller, Num(id): Num<u64>) -> PResult<Json<Value>> {
    Ok(Json(user_view(&s.catalyst.find_user(&who, Lookup::Number(id)).await?)))
}

async fn by_external(
    State(s): State<AppState>,
    Caller(who): Caller,
    axum::extract::Path(external): axum::extract::Path<String>,
) -> PResult<Json<Value>> {
    Ok(Json(user_view(&s.catalyst.find_user(&who, Lookup::External(&external)).await?)))
}

/// `POST /users`: `password` is optional (without one the account cannot log in until an
/// operator sets one).
#[derive(serde::Deserialize)]
struct CreateUser {
    email: String,
    username: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

async fn create_user(State(s): State<AppState>, Caller(who): Caller, Input(u): Input<CreateUser>) -> PResult<Response> {
    let password = match u.password.filter(|p| !p.is_empty()) {
        Some(p) => p,
        // Unguessable and never shown: the account has no usable password yet.
        None => catalyst_runtime::control::auth::random_secret(),
    };
    let input = NewUser {
        email: u.email,
        username: u.username,
        password,
        external_id: u.external_id,
        first_name: u.first_name,
        last_name: u.last_name,
    };
    Ok(created(user_view(&s.catalyst.create_user(&who, input).await?)))
}

#[derive(serde::Deserialize)]
struct UpdateUser {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

async fn update_user(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
    Input(u): Input<UpdateUser>,
) -> PResult<Json<Value>> {
    let user = s.catalyst.find_user(&who, Lookup::Number(id)).await?;
    let patch = UserPatch {
        email: u.email,
        username: u.username,
        roles: None,
        external_id: u.external_id,
        first_name: u.first_name,
        last_name: u.last_name,
        password: u.password.filter(|p| !p.is_empty()),
    };
    Ok(Json(user_view(&s.catalyst.update_user(&who, user.id, patch).await?)))
}

async fn delete_user(
    State(s): State<AppState>,
    Caller(who): Caller,
    Num(id): Num<u64>,
) -> Result<Response, PteroError> {
    let user = s.catalyst.find_user(&who, Lookup::Number(id)).await?;
    s.catalyst.delete_user(&who, user.id).await?;
    Ok(no_content())
}
