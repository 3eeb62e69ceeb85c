use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use permetrix::cli::{Cli, Command, ServeArgs};
use permetrix::server::Application;
use secrecy::ExposeSecret;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            permetrix::telemetry::init(args.log_format);
            actix_rt::System::new().block_on(serve(args))
        }
        Command::Load(args) => permetrix::load::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config();
    let app = Application::build(config.clone()).await?;
    let mut out = std::io::stdout().lock();
    if let Some(token) = &app.startup.generated_admin_token {
        writeln!(
            out,
            "\nOperator token (shown once; set PERMETRIX_ADMIN_TOKEN to choose your own):\n  {}\n",
            token.expose_secret()
        )?;
    }
    if let Some(creds) = &app.startup.demo {
        writeln!(out, "{}", creds.banner(app.addr()))?;
    } else if app.startup.demo_already_present {
        writeln!(
            out,
            "Demo data is already present; its credentials were printed when it was first seeded."
        )?;
    }
    out.flush()?;
    drop(out);
    app.run_until_stopped().await
}
